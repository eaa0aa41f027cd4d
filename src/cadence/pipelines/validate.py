"""Validate a whole loaded config before anything starts.

Every problem is reported at once, each as ``file:line:col: key.path: what is wrong``
with the expected type or value and, for a misspelled key, the nearest valid one.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from cadence.errors import ConfigError
from cadence.pipelines.loader import KeyPath, LoadedConfig, format_key_path
from cadence.pipelines.registry import Registry
from cadence.stages import ProcessorSpec
from cadence.pipelines.schema import CadenceConfig
from cadence.pipelines.suggest import did_you_mean


@dataclass(frozen=True)
class StageConfig:
    """One validated pipeline entry: its spec and typed params."""

    index: int
    spec: ProcessorSpec
    params: BaseModel


@dataclass(frozen=True)
class ValidatedConfig:
    """A config file that passed validation, ready for the builder."""

    config: CadenceConfig
    stages: list[StageConfig]
    source: str
    character: Any = None  # the parsed card of session.character (cadence.memory.cards.CharacterCard)
    base_dir: Path | None = None  # the config file's folder (relative paths in it start here)
    steering: Any = None  # what goes before a plugin's TTS service (the registry's; see Registry)

    def has_stage(self, name: str) -> bool:
        """Whether the pipeline contains an entry of type ``name``."""
        return any(stage.spec.name == name for stage in self.stages)

    def params_of(self, name: str) -> Any:
        """The params of the first entry of type ``name``, or None."""
        return next((stage.params for stage in self.stages if stage.spec.name == name), None)


def validate(loaded: LoadedConfig, registry: Registry) -> ValidatedConfig:
    """Check every section and pipeline entry; raise one ConfigError listing all problems."""
    problems: list[str] = []
    data = loaded.data
    if not isinstance(data, dict):
        raise ConfigError(f"{loaded.locate(())}: the config must be a mapping of sections")

    config: CadenceConfig | None = None
    try:
        config = CadenceConfig.model_validate(data)
    except ValidationError as exc:
        problems += _describe(exc, loaded, CadenceConfig, data, prefix=())

    stages: list[StageConfig] = []
    pipeline = data.get("pipeline")
    if isinstance(pipeline, list):
        for index, entry in enumerate(pipeline):
            stage, stage_problems = _validate_entry(index, entry, loaded, registry)
            problems += stage_problems
            if stage:
                if stage.spec.check is not None:
                    before = [s.spec.name for s in stages]
                    problems += [f"{loaded.locate(('pipeline', index, key))}: {format_key_path(('pipeline', index, key))}:"
                                 f" {message}" for key, message in stage.spec.check(stage.params, before)]
                stages.append(stage)
        if not pipeline:
            problems.append(f"{loaded.locate(('pipeline',))}: pipeline: expected at least one processor entry")

    if config is not None:
        problems += _voice_problems(config, stages, loaded)
        problems += _alias_problems(config, loaded)
        problems += _tool_problems(config, loaded)
    if problems:
        header = f"{loaded.path or 'config'}: {len(problems)} problem(s):"
        raise ConfigError("\n".join([header, *("  " + p for p in problems)]))
    assert config is not None
    return ValidatedConfig(config=config, stages=stages, source=str(loaded.path or "<string>"), steering=registry.steering,
                           base_dir=loaded.path.parent if loaded.path else None)


def _voice_problems(config: CadenceConfig, stages: list[StageConfig], loaded: LoadedConfig) -> list[str]:
    from cadence.models import PACKAGED_MODELS

    problems = []
    has_tts = any(stage.spec.name == "tts" for stage in stages)
    for name, entry in config.voices.items():
        path: KeyPath = ("voices", name, "voice")
        if not has_tts:
            problems.append(f"{loaded.locate(('voices', name))}: voices.{name}: the pipeline has no tts stage to speak it")
        elif entry.engine == "piper" and entry.voice not in PACKAGED_MODELS and not (loaded.path.parent if loaded.path else Path()).joinpath(
                Path(entry.voice).expanduser()).exists():
            problems.append(f"{loaded.locate(path)}: {format_key_path(path)}: {entry.voice!r} is neither a packaged"
                            " voice (en_US-joe-medium) nor an existing .onnx path")
    return problems


def _tool_problems(config: CadenceConfig, loaded: LoadedConfig) -> list[str]:
    from cadence.tools.spec import PythonTool, arguments_model, resolve

    problems = []
    for name, entry in config.tools.items():
        if isinstance(entry, PythonTool):
            try:
                fn = resolve(entry.function)
                if entry.parameters is None:  # its schema must come from its type hints, here and not mid-session
                    arguments_model(fn).model_json_schema()
            except Exception as exc:  # noqa: BLE001 - import, hint and schema errors alike go to the config error
                path: KeyPath = ("tools", name, "function")
                problems.append(f"{loaded.locate(path)}: {format_key_path(path)}: {exc}")
    return problems


def _alias_problems(config: CadenceConfig, loaded: LoadedConfig) -> list[str]:
    from cadence.pipelines.schema import LlamaCppProvider

    problems = []
    providers = config.router.providers
    for name, target in config.router.aliases.items():
        path: KeyPath = ("router", "aliases", name)
        provider_name, _, model = target.partition("/")
        provider = providers.get(provider_name)
        if not model or provider is None:
            problem = (f"{target!r} must be 'provider/model' with a configured provider"
                       f" ({', '.join(providers)})")
        elif isinstance(provider, LlamaCppProvider) and model != provider.model:
            problem = f"{target!r}: provider {provider_name!r} serves only {provider_name}/{provider.model}"
        else:
            continue
        problems.append(f"{loaded.locate(path)}: {format_key_path(path)}: {problem}")
    return problems


def _validate_entry(
    index: int, entry: Any, loaded: LoadedConfig, registry: Registry
) -> tuple[StageConfig | None, list[str]]:
    path: KeyPath = ("pipeline", index)
    where = loaded.locate(path)
    if not isinstance(entry, dict) or "type" not in entry:
        return None, [f"{where}: {format_key_path(path)}: expected a mapping with a 'type' key, e.g. {{type: vad}}"]
    type_name = entry["type"]
    try:
        spec = registry.get(str(type_name))
    except ConfigError as exc:
        return None, [f"{loaded.locate((*path, 'type'))}: {format_key_path((*path, 'type'))}: {exc}"]
    params = {k: v for k, v in entry.items() if k != "type"}
    try:
        return StageConfig(index, spec, spec.params.model_validate(params)), []
    except ValidationError as exc:
        return None, _describe(exc, loaded, spec.params, params, prefix=path, extra_keys=("type",))


def _describe(
    exc: ValidationError,
    loaded: LoadedConfig,
    model: type[BaseModel],
    data: Any,
    prefix: KeyPath,
    extra_keys: tuple[str, ...] = (),
) -> list[str]:
    out = []
    for error in exc.errors(include_url=False):
        loc = _data_path(model, error["loc"], data)
        key_path = (*prefix, *loc)
        where = loaded.locate(key_path)
        message = _message(error, model, loc, data, extra_keys)
        out.append(f"{where}: {format_key_path(key_path)}: {message}")
    return out


def _message(error: dict[str, Any], model: type[BaseModel], loc: KeyPath, data: Any, extra: tuple[str, ...]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        valid = sorted([*_fields_at(model, loc[:-1], data), *(extra if len(loc) == 1 else ())])
        return f"unknown key{did_you_mean(str(loc[-1]), valid)}; valid keys here: {', '.join(valid)}"
    if kind == "missing":
        return "required key is missing"
    given = error.get("input")
    shown = f" (got {type(given).__name__} {given!r})" if not isinstance(given, dict) else ""
    return f"{error['msg']}{shown}"


def _data_path(model: type[BaseModel], loc: tuple[Any, ...], data: Any) -> KeyPath:
    """Drop the tags pydantic inserts into ``loc`` for unions, keeping real keys only."""
    out: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            out.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            out.append(part)
            node = node[part]
        elif not isinstance(node, (dict, list)) or isinstance(part, int):
            out.append(part)
        # else: a union tag such as 'llamacpp' — not a key in the file
    return tuple(out)


def _fields_at(model: Any, loc: KeyPath, data: Any) -> list[str]:
    """Field names of the model that validates the mapping at ``loc``."""
    annotation: Any = model
    node = data
    for part in loc:
        annotation = _step(annotation, part, node)
        node = node.get(part) if isinstance(node, dict) else node[part] if isinstance(node, list) else None
    annotation = _pick_union_member(annotation, node)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _step(annotation: Any, part: str | int, node: Any) -> Any:
    annotation = _pick_union_member(annotation, node)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(str(part))
        return field.annotation if field else None
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin in (list, tuple) and args:
        return args[0]
    if origin is dict and len(args) == 2:
        return args[1]
    return None


def _pick_union_member(annotation: Any, node: Any) -> Any:
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for member in typing.get_args(annotation):
            if isinstance(member, type) and issubclass(member, BaseModel):
                tag = member.model_fields.get("kind")
                if tag is None or (isinstance(node, dict) and node.get("kind") in typing.get_args(tag.annotation)):
                    return member
        return None
    return annotation
