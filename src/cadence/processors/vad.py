"""``vad``: Silero voice activity detection (pipecat's VADProcessor)."""

from __future__ import annotations

from pydantic import Field

from cadence.stages import BuildContext, ProcessorSpec, Spec, Stage


class VADParams(Spec):
    """Params of the ``vad`` stage."""

    confidence: float = Field(0.7, ge=0, le=1, description="Speech probability needed to count a frame as speech.")
    start_secs: float = Field(0.2, ge=0, description="Speech needed before the user counts as speaking.")
    stop_secs: float = Field(0.2, ge=0, description="Silence needed before the user counts as stopped.")
    min_volume: float = Field(0.6, ge=0, le=1, description="Minimum volume for a frame to count as speech.")


def build(params: VADParams, context: BuildContext) -> Stage:
    """A VADProcessor with its own Silero state on the process-wide model session."""
    from pipecat.audio.vad.vad_analyzer import VADParams as PipecatVADParams
    from pipecat.processors.audio.vad_processor import VADProcessor

    from cadence.processors.silero_shared import SharedSileroVADAnalyzer

    analyzer = SharedSileroVADAnalyzer(session=context.store.silero_session(),
                                       params=PipecatVADParams(**params.model_dump()))
    processor = VADProcessor(vad_analyzer=analyzer)
    context.roles.vad, context.roles.vad_analyzer = processor, analyzer
    return Stage(processor)


SPEC = ProcessorSpec("vad", VADParams, build, "Silero voice activity detection: marks where the user speaks.")
