"""The small interface between the pipeline builder and the stage types it builds.

Stage modules (Cadence's built-ins in ``cadence.processors`` and plugins) depend on this
module, never on the builder; the builder (``cadence.pipelines``) is handed the stage
types and never imports them. A stage builder gets a ``BuildContext`` (shared models,
the router, the session's persona and user) and returns a ``Stage``; the parts of its
work that a transport talks to later (an analyzer to tune, a service to update) it
records in ``context.roles``, so nobody has to find processors by class name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict


class Spec(BaseModel):
    """Base of every config spec: unknown keys are errors, docs come from field descriptions."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class Stage:
    """What building one pipeline entry gives: its processor, and any that go last.

    ``tail`` processors are placed after the transport output (the assistant context
    aggregator must see what was actually played); ``head`` ones right before ``processor``.
    """

    processor: Any  # a pipecat FrameProcessor
    tail: list[Any] = field(default_factory=list)
    head: list[Any] = field(default_factory=list)


@dataclass
class StageRoles:
    """The objects of one session's pipeline that a transport talks to, set by the stages
    that create them; ``None`` where the pipeline has no such stage."""

    vad: Any = None  # pipecat VADProcessor: VADParamsUpdateFrame reaches its analyzer
    vad_analyzer: Any = None  # its VADAnalyzer (params read at session start)
    turn: Any = None  # pipecat UserTurnProcessor
    turn_analyzer: Any = None  # SmartTurnAnalyzer: end-of-turn threshold and longest wait
    turn_start: Any = None  # the start strategy whose barge-in can be switched
    stt: Any = None  # an STT service: a committed audio buffer is transcribed through it
    llm: Any = None  # the LLM service
    tts: Any = None  # the TTS service
    steering: Any = None  # cadence.processors.steering.SteeringTags: the reply's text without its tags
    filler: Any = None  # cadence.processors.filler.FillerInjector: providerData.responsiveness
    backchannel: Any = None  # cadence.processors.backchannel.BackchannelInjector: providerData.backchannel
    resumption: Any = None  # cadence.processors.resumption.TurnResumption (on only for spoken replies)
    user_aggregator: Any = None  # pipecat LLMUserAggregator
    assistant_aggregator: Any = None  # pipecat LLMAssistantAggregator
    llm_context: Any = None  # the pipecat LLMContext both aggregators share
    context_window: Any = None  # cadence.processors.context_window.ContextWindow: fits requests, folds turns


@dataclass
class BuildContext:
    """What a stage builder may use: shared models, the router, and the session's settings."""

    store: Any  # cadence.models.ModelStore
    router: Any  # cadence.router.Router
    instructions: str
    user_id: str
    stage_names: frozenset[str] = frozenset()
    roles: StageRoles = field(default_factory=StageRoles)
    character: Any = None  # the config's character card (cadence.memory.cards.CharacterCard), if any
    memory: Any = None  # cadence.memory.service.MemoryService: the process's per-user memory
    named_user: str | None = None  # the user the client named (memory persists only for a named user)
    tools: Any = None  # cadence.tools.server.ServerTools: the tools the server runs (the YAML's tools:)

    def has_stage(self, name: str) -> bool:
        """Whether the pipeline contains an entry of type ``name``."""
        return name in self.stage_names


BuildFn = Callable[[Any, BuildContext], Any]
WarmFn = Callable[[Any, BuildContext], None]
# (params, the types of the entries before this one) → [(key, what is wrong)]
CheckFn = Callable[[Any, list[str]], list[tuple[str, str]]]


@dataclass(frozen=True)
class ProcessorSpec:
    """One stage type: its YAML name, params model, builder and a one-line summary.

    ``warm`` is work the type needs once per process before the first session (load a
    model, prefill a prompt). ``check`` reports params that do not fit the entries before
    this one (validated with the whole file, before anything starts). ``hears_audio``:
    whether the stage reads the user's audio frames, or a function of the pipeline's stage
    names saying so; they go no further than the last stage that does (a plugin is assumed
    to unless its class sets ``hears_audio = False``).
    """

    name: str
    params: type[BaseModel]
    build: BuildFn
    description: str
    source: str = "built-in"
    warm: WarmFn | None = None
    check: CheckFn | None = None
    hears_audio: bool | Callable[[frozenset[str]], bool] = True
