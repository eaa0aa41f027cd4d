"""Load and validate a config with the stage types this installation knows.

The composition root of the YAML layer: Cadence's built-in stages
(``cadence.processors``) plus installed plugins, handed to ``cadence.pipelines``.
"""

from __future__ import annotations

from functools import cache

from cadence.pipelines import Registry, ValidatedConfig, load_config_file, load_config_text
from cadence.pipelines import validate as _validate
from cadence.pipelines.loader import LoadedConfig


@cache
def default_registry() -> Registry:
    """Built-ins and every plugin installed under the ``cadence.processors`` entry points."""
    from cadence.processors import BUILTINS

    return Registry(BUILTINS)


def validate(loaded: LoadedConfig) -> ValidatedConfig:
    """Validate a loaded config against the default registry."""
    return _validate(loaded, default_registry())


def load_and_validate(path: str) -> ValidatedConfig:
    """Read, interpolate and validate a config file; raise ConfigError on any problem."""
    return validate(load_config_file(path))


__all__ = ["default_registry", "load_and_validate", "load_config_text", "validate"]
