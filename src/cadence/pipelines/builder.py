"""A validated config → one pipecat Pipeline per session, models shared per process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameProcessor

from cadence.errors import ConfigError
from cadence.models import ModelStore
from cadence.pipelines.validate import ValidatedConfig
from cadence.pipelines.audio_end import InputAudioEnd
from cadence.pipelines.worker import SessionWorker
from cadence.router import Router
from cadence.stages import BuildContext, Stage, StageRoles


@dataclass
class SessionPipeline:
    """One session's pipeline, its task, and the roles its stages recorded."""

    pipeline: Pipeline
    task: PipelineWorker
    processors: list[FrameProcessor]
    roles: StageRoles


class PipelineFactory:
    """Builds session pipelines from one validated config; loads models once."""

    def __init__(self, config: ValidatedConfig, store: ModelStore | None = None):
        from cadence.memory.service import MemoryService
        from cadence.tools.server import ServerTools

        self.config = config
        self.store = store or ModelStore()
        self.router = Router(config.config.router, self.store)
        memory = config.config.memory
        if memory.memory_model:
            try:
                self.router.check_model(memory.memory_model)
            except ConfigError as exc:
                raise ConfigError(f"{config.source}: memory.memory_model: {exc}") from exc
        self.memory = MemoryService(memory, self.router, config.base_dir)
        self.tools = ServerTools(config.config.tools)

    def context(self, instructions: str | None = None, user_id: str | None = None) -> BuildContext:
        """A BuildContext with the session defaults, overridable per session."""
        session = self.config.config.session
        return BuildContext(
            store=self.store,
            router=self.router,
            instructions=instructions if instructions is not None else session.instructions,
            user_id=user_id or session.user_id,
            named_user=user_id or None,
            memory=self.memory,
            stage_names=frozenset(stage.spec.name for stage in self.config.stages),
            character=self.config.character,
            tools=self.tools,
        )

    def prepare(self) -> None:
        """Load every model and warm every prompt prefix before the first session.

        Building one set of stages loads each model into the store; it is then dropped.
        """
        context = self.context()
        self.build_stages(context)
        for stage in self.config.stages:
            if stage.spec.warm:
                stage.spec.warm(stage.params, context)

    def build_stages(self, context: BuildContext) -> list[Stage]:
        """Build every pipeline entry in order; errors name the entry and its source."""
        stages = []
        for stage in self.config.stages:
            try:
                built = _as_stage(stage.spec.build(stage.params, context))
                _record_service_roles(context.roles, built.processor)
                stages.append(_steered(built, context.roles, self.config.steering))
            except ConfigError as exc:
                raise ConfigError(f"{self.config.source}: pipeline[{stage.index}] ({stage.spec.name}): {exc}") from exc
        return stages

    def build(
        self,
        transport_in: FrameProcessor,
        transport_out: FrameProcessor,
        *,
        instructions: str | None = None,
        user_id: str | None = None,
        task_params: dict[str, Any] | None = None,
        after: dict[str, list[FrameProcessor]] | None = None,
    ) -> SessionPipeline:
        """A pipeline ``transport_in → stages → transport_out → tails`` and its task; the
        user's audio goes no further than the last stage that hears it.

        ``after`` places a transport's own processors right after the first stage of a
        type, e.g. ``{"context": [gate]}``.
        """
        context = self.context(instructions, user_id)
        stages = self.build_stages(context)
        processors = []
        pending = dict(after or {})
        names = frozenset(config.spec.name for config in self.config.stages)
        hearing = [i for i, config in enumerate(self.config.stages)
                   if (config.spec.hears_audio(names) if callable(config.spec.hears_audio) else config.spec.hears_audio)]
        audio_ends = hearing[-1] if hearing and not any(stages[i].tail for i in hearing) else None
        for i, (stage, config) in enumerate(zip(stages, self.config.stages)):
            processors += [*stage.head, stage.processor]
            processors += pending.pop(config.spec.name, [])
            if i == audio_ends and i < len(stages) - 1:
                processors.append(InputAudioEnd())
        if pending:
            raise ConfigError(f"{self.config.source}: this transport needs a {' and a '.join(pending)} stage")
        tails = [p for stage in stages for p in stage.tail]
        pipeline = Pipeline([transport_in, *processors, transport_out, *tails])
        transport = self.config.config.transport
        params = PipelineParams(
            audio_in_sample_rate=transport.audio_in_sample_rate,
            audio_out_sample_rate=transport.audio_out_sample_rate,
            enable_metrics=True,
            enable_usage_metrics=True,
            **(task_params or {}),
        )
        # No turn tracking: nothing here reads pipecat's turns, and its observer sees every frame.
        task = SessionWorker(pipeline, params=params, idle_timeout_secs=None, enable_rtvi=False,
                             enable_turn_tracking=False)
        return SessionPipeline(pipeline, task, [*processors, *tails], context.roles)


def _record_service_roles(roles: StageRoles, processor: FrameProcessor) -> None:
    """A plugin's pipecat STT, LLM or TTS service takes that role when no stage recorded one,
    so a transport can follow it like a built-in (built-ins record theirs themselves)."""
    from pipecat.services.llm_service import LLMService
    from pipecat.services.stt_service import STTService
    from pipecat.services.tts_service import TTSService

    for role, cls in (("stt", STTService), ("llm", LLMService), ("tts", TTSService)):
        if isinstance(processor, cls) and getattr(roles, role) is None:
            setattr(roles, role, processor)


def _steered(stage: Stage, roles: StageRoles, steering: Any) -> Stage:
    """A plugin's TTS service gets the steering stage the built-in one has (``steering``, handed
    in with the registry): whatever the engine, tags leave the text before it speaks and
    before the transcript is read."""
    if steering is not None and stage.processor is roles.tts and roles.steering is None:
        roles.steering = steering()
        return Stage(stage.processor, head=[roles.steering, *stage.head], tail=stage.tail)
    return stage


def _as_stage(built: Any) -> Stage:
    if isinstance(built, Stage):
        return built
    if isinstance(built, FrameProcessor):
        return Stage(built)
    raise ConfigError(f"a processor builder returned {type(built).__name__}, not a FrameProcessor")
