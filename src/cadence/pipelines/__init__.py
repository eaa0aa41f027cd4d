"""The YAML layer: load a config with line numbers, validate it, build session pipelines."""

from cadence.pipelines.loader import load_config_file, load_config_text
from cadence.pipelines.validate import ValidatedConfig, validate


def load_and_validate(path: str) -> ValidatedConfig:
    """Read, interpolate and validate a config file; raise ConfigError on any problem."""
    return validate(load_config_file(path))


__all__ = ["ValidatedConfig", "load_and_validate", "load_config_file", "load_config_text", "validate"]
