"""Load and validate a config with the stage types this installation knows.

The composition root of the YAML layer: Cadence's built-in stages
(``cadence.processors``) plus installed plugins, handed to ``cadence.pipelines``.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from pathlib import Path

from cadence.errors import ConfigError
from cadence.pipelines import Registry, ValidatedConfig, load_config_file, load_config_text
from cadence.pipelines import validate as _validate
from cadence.pipelines.loader import LoadedConfig


@cache
def default_registry() -> Registry:
    """Built-ins and every plugin installed under the ``cadence.processors`` entry points."""
    from cadence.processors import BUILTINS

    return Registry(BUILTINS)


def validate(loaded: LoadedConfig) -> ValidatedConfig:
    """Validate a loaded config against the default registry; read its character card."""
    config = _validate(loaded, default_registry())
    memory_model = config.config.memory.memory_model
    if memory_model and memory_model.partition("/")[0] not in config.config.router.providers:
        raise ConfigError(f"{loaded.locate(('memory', 'memory_model'))}: memory.memory_model: {memory_model!r} names"
                          f" no provider of router.providers (known: {', '.join(config.config.router.providers)});"
                          " expected 'provider/model'")
    if config.config.session.character:
        config = dataclasses.replace(config, character=_card(loaded, config.config.session.character))
    return config


def _card(loaded: LoadedConfig, name: str):
    """session.character, confined to the config's folder like ``!include``."""
    from cadence.memory.cards import CardError, load_card

    where = loaded.locate(("session", "character"))
    root = (loaded.path.parent if loaded.path else Path.cwd()).resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root):
        raise ConfigError(f"{where}: session.character: {name!r} is outside the config's folder {root}")
    try:
        return load_card(path)
    except CardError as exc:
        raise ConfigError(f"{where}: session.character: {exc}") from exc


def load_and_validate(path: str) -> ValidatedConfig:
    """Read, interpolate and validate a config file; raise ConfigError on any problem."""
    return validate(load_config_file(path))


__all__ = ["default_registry", "load_and_validate", "load_config_text", "validate"]
