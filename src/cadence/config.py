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
    from cadence.processors.steering import SteeringTags

    return Registry(BUILTINS, steering=SteeringTags)


def validate(loaded: LoadedConfig) -> ValidatedConfig:
    """Validate a loaded config against the default registry; read its character card."""
    config = _validate(loaded, default_registry())
    memory_model = config.config.memory.memory_model
    if memory_model and memory_model.partition("/")[0] not in config.config.router.providers:
        raise ConfigError(f"{loaded.locate(('memory', 'memory_model'))}: memory.memory_model: {memory_model!r} names"
                          f" no provider of router.providers (known: {', '.join(config.config.router.providers)});"
                          " expected 'provider/model'")
    if config.config.server.tls:
        _check_tls(loaded, config)
    if config.config.session.character:
        config = dataclasses.replace(config, character=_card(loaded, config.config.session.character))
    return config


def tls_files(config: ValidatedConfig) -> tuple[Path, Path] | None:
    """server.tls's certificate and key files, relative paths taken from the config's folder; None: no TLS."""
    tls = config.config.server.tls
    if tls is None:
        return None
    root = config.base_dir or Path.cwd()
    return root / Path(tls.cert).expanduser(), root / Path(tls.key).expanduser()


def _check_tls(loaded: LoadedConfig, config: ValidatedConfig) -> None:
    """Each file readable, and the pair a certificate with its own key, before anything starts."""
    import ssl

    files = tls_files(config)
    assert files is not None
    for name, path in zip(("cert", "key"), files):
        try:
            path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{loaded.locate(('server', 'tls', name))}: server.tls.{name}: cannot read {path}:"
                              f" {exc.strerror or exc}") from exc
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(*files, password=lambda: b"")
    except (ssl.SSLError, ValueError) as exc:
        raise ConfigError(f"{loaded.locate(('server', 'tls'))}: server.tls: {files[0]} and {files[1]} are not a PEM"
                          f" certificate and its unencrypted private key ({exc})") from exc


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


__all__ = ["default_registry", "load_and_validate", "load_config_text", "tls_files", "validate"]
