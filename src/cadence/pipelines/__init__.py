"""The YAML layer: load a config with line numbers, validate it, build session pipelines.

It knows stage types only through the ``Registry`` it is handed (``cadence.config``
hands it Cadence's built-ins); stage modules never import this package.
"""

from cadence.pipelines.loader import load_config_file, load_config_text
from cadence.pipelines.registry import Registry
from cadence.pipelines.validate import ValidatedConfig, validate

__all__ = ["Registry", "ValidatedConfig", "load_config_file", "load_config_text", "validate"]
