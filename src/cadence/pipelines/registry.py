"""Processor types a pipeline entry may name.

Three sources, looked up in this order:

1. built-ins, handed to the registry by whoever builds it (``cadence.config`` hands it
   ``cadence.processors.BUILTINS``: ``vad``, ``turn``, ``stt``, ``context``, ``llm``, ``filler``, ``tts``, ``backchannel``);
2. plugins installed as packages, from the entry-point group ``cadence.processors``;
3. ``module:Class`` for a class in the user's own code (importable from ``sys.path``).

A plugin is a pipecat ``FrameProcessor`` subclass. It may declare its params as a
nested pydantic model named ``Params`` (validated like any built-in's) and may build
itself with a ``from_config(params, context)`` classmethod; otherwise it is called as
``Class(**params)``.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from pydantic import BaseModel

from cadence.errors import ConfigError
from cadence.stages import BuildContext, BuildFn, ProcessorSpec, Spec

ENTRY_POINT_GROUP = "cadence.processors"


class NoParams(Spec):
    """A plugin that declares no ``Params`` takes no keys."""


def _first_line(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else "(no description)"


def spec_from_class(name: str, cls: Any, source: str) -> ProcessorSpec:
    """Wrap a user's FrameProcessor subclass as a ProcessorSpec."""
    from pipecat.processors.frame_processor import FrameProcessor

    if not (inspect.isclass(cls) and issubclass(cls, FrameProcessor)):
        raise TypeError(f"{name!r} ({source}) is not a pipecat FrameProcessor subclass")
    params = getattr(cls, "Params", None)
    if not (inspect.isclass(params) and issubclass(params, BaseModel)):
        params = NoParams

    def build(p: BaseModel, context: BuildContext) -> Any:
        if hasattr(cls, "from_config"):
            return cls.from_config(p, context)
        return cls(**p.model_dump())

    return ProcessorSpec(name=name, params=params, build=build, description=_first_line(cls), source=source,
                         hears_audio=getattr(cls, "hears_audio", True))  # a class may say it never reads audio


@cache
def _plugin_entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


class Registry:
    """Looks up processor types by the name a pipeline entry gives."""

    def __init__(self, builtins: Iterable[ProcessorSpec], steering: Callable[[], Any] | None = None) -> None:
        """``steering`` makes the processor a plugin's TTS service gets before it (tags out of
        the text), handed in with the built-ins as the built-in tts stage has its own."""
        self._builtins = {spec.name: spec for spec in builtins}
        self.steering = steering
        self._loaded: dict[str, ProcessorSpec] = {}

    def names(self) -> list[str]:
        """Every type name known without importing user code: built-ins and plugins."""
        return sorted({*self._builtins, *_plugin_entry_points()})

    def all_specs(self) -> list[ProcessorSpec]:
        """Built-ins then plugins; a plugin that fails to load is reported in its description."""
        specs = list(self._builtins.values())
        for name in sorted(_plugin_entry_points()):
            if name in self._builtins:
                continue
            try:
                specs.append(self.get(name))
            except ConfigError as exc:
                specs.append(ProcessorSpec(name, NoParams, _unusable(exc), f"(cannot load: {exc})", "plugin"))
        return specs

    def get(self, name: str) -> ProcessorSpec:
        """The spec for ``name``; raise ConfigError with a suggestion when there is none."""
        if name in self._builtins:
            return self._builtins[name]
        if name in self._loaded:
            return self._loaded[name]
        plugins = _plugin_entry_points()
        if name in plugins:
            ep = plugins[name]
            try:
                spec = spec_from_class(name, ep.load(), f"plugin {ep.value}")
            except Exception as exc:
                raise ConfigError(f"processor plugin {name!r} ({ep.value}) failed to load: {exc}") from exc
        elif ":" in name:
            spec = self._from_import_path(name)
        else:
            from cadence.pipelines.suggest import did_you_mean

            raise ConfigError(
                f"unknown processor type {name!r}; known types: {', '.join(self.names())}"
                f"{did_you_mean(name, self.names())}. A class of your own is written as module:Class"
            )
        self._loaded[name] = spec
        return spec

    @staticmethod
    def _from_import_path(name: str) -> ProcessorSpec:
        module_name, _, attr = name.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigError(f"processor type {name!r}: cannot import module {module_name!r}: {exc}") from exc
        cls = getattr(module, attr, None)
        if cls is None:
            raise ConfigError(f"processor type {name!r}: module {module_name!r} has no attribute {attr!r}")
        try:
            return spec_from_class(name, cls, f"class {name}")
        except TypeError as exc:
            raise ConfigError(f"processor type {exc}") from exc


def _unusable(exc: Exception) -> BuildFn:
    def build(params: Any, context: Any) -> Any:
        raise exc

    return build
