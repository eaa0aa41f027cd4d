"""YAML → plain Python data that remembers where every key came from.

The loader composes the YAML node tree itself (instead of ``yaml.safe_load``) so that
each value keeps the file and line it was written on; validation errors later point
at that line. It also resolves two extensions:

- ``${VAR}`` / ``${VAR:-default}`` inside strings, from the environment, so secrets
  never live in config files;
- ``!include other.yaml``, confined to files under the including config's folder so a
  config cannot read arbitrary files on the host.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cadence.errors import ConfigError

KeyPath = tuple[str | int, ...]

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class Location:
    """Where a value was written: file, 1-based line and column."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass
class LoadedConfig:
    """The parsed document plus a map from key paths to their source locations."""

    data: Any
    locations: dict[KeyPath, Location] = field(default_factory=dict)
    path: Path | None = None

    def locate(self, key_path: KeyPath) -> Location | None:
        """The location of ``key_path``, or of its nearest ancestor that has one."""
        path = tuple(key_path)
        while True:
            if path in self.locations:
                return self.locations[path]
            if not path:
                return None
            path = path[:-1]


def format_key_path(key_path: KeyPath) -> str:
    """``("pipeline", 2, "model")`` → ``pipeline[2].model``."""
    out = ""
    for part in key_path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


class _IncludeLoader(yaml.SafeLoader):
    """SafeLoader that knows the ``!include`` tag (resolved by our own walker)."""


_IncludeLoader.add_constructor("!include", lambda loader, node: loader.construct_scalar(node))
_SCALARS = yaml.constructor.SafeConstructor()


def load_config_file(path: str | os.PathLike[str], env: dict[str, str] | None = None) -> LoadedConfig:
    """Read and parse a config file; raise ConfigError naming file and line on failure."""
    config_path = Path(path)
    if not config_path.is_file():
        raise ConfigError(f"{config_path}: config file not found")
    walker = _Walker(root_dir=config_path.resolve().parent, env=os.environ if env is None else env)
    data = walker.load(config_path, key_path=())
    return LoadedConfig(data=data, locations=walker.locations, path=config_path)


def load_config_text(text: str, name: str = "<string>", env: dict[str, str] | None = None) -> LoadedConfig:
    """Parse config text that has no file (tests, ``--config-text``)."""
    walker = _Walker(root_dir=Path.cwd(), env=os.environ if env is None else env)
    data = walker.parse(text, name, key_path=())
    return LoadedConfig(data=data, locations=walker.locations)


class _Walker:
    def __init__(self, root_dir: Path, env: Any):
        self.root_dir = root_dir
        self.env = env
        self.locations: dict[KeyPath, Location] = {}
        self._stack: list[Path] = []

    def load(self, path: Path, key_path: KeyPath) -> Any:
        resolved = path.resolve()
        if resolved in self._stack:
            raise ConfigError(f"{path}: !include cycle ({' -> '.join(str(p) for p in self._stack)})")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read config: {exc}") from exc
        self._stack.append(resolved)
        try:
            return self.parse(text, str(path), key_path)
        finally:
            self._stack.pop()

    def parse(self, text: str, name: str, key_path: KeyPath) -> Any:
        try:
            node = yaml.compose(text, Loader=_IncludeLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark
            where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
            raise ConfigError(f"{where}: invalid YAML: {exc.problem}") from exc
        if node is None:
            return {}
        return self._node(node, name, key_path)

    def _node(self, node: yaml.Node, name: str, key_path: KeyPath) -> Any:
        loc = Location(name, node.start_mark.line + 1, node.start_mark.column + 1)
        self.locations.setdefault(key_path, loc)
        if node.tag == "!include":
            return self._include(node, loc, key_path)
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = str(key_node.value)
                if key == "<<":
                    raise ConfigError(f"{loc}: YAML merge keys ('<<') are not supported; use !include")
                child = (*key_path, key)
                self.locations[child] = Location(
                    name, key_node.start_mark.line + 1, key_node.start_mark.column + 1
                )
                if key in out:
                    raise ConfigError(f"{self.locations[child]}: {format_key_path(child)}: duplicate key")
                out[key] = self._node(value_node, name, child)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self._node(item, name, (*key_path, i)) for i, item in enumerate(node.value)]
        value = _SCALARS.construct_object(node)
        if isinstance(value, str):
            value = self._interpolate(value, loc, key_path)
        return value

    def _interpolate(self, value: str, loc: Location, key_path: KeyPath) -> str:
        def replace(match: re.Match[str]) -> str:
            var, default = match.group(1), match.group(2)
            if var in self.env:
                return self.env[var]
            if default is not None:
                return default
            raise ConfigError(
                f"{loc}: {format_key_path(key_path)}: environment variable ${{{var}}} is not set"
                f" (set it, or write ${{{var}:-default}} to give a default)"
            )

        return _VAR.sub(replace, value)

    def _include(self, node: yaml.Node, loc: Location, key_path: KeyPath) -> Any:
        target = (self.root_dir / str(node.value)).resolve()
        if not target.is_relative_to(self.root_dir):
            raise ConfigError(
                f"{loc}: {format_key_path(key_path)}: !include {node.value!r} is outside the "
                f"config's folder {self.root_dir}; only files under it may be included"
            )
        if not target.is_file():
            raise ConfigError(f"{loc}: {format_key_path(key_path)}: !include {node.value!r}: file not found")
        return self.load(target, key_path)
