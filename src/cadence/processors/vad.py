"""``vad``: Silero voice activity detection (pipecat's VADProcessor)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from cadence.pipelines.registry import ProcessorSpec
from cadence.pipelines.schema import Spec

if TYPE_CHECKING:
    from cadence.pipelines.builder import BuildContext, Stage


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

    from cadence.pipelines.builder import Stage
    from cadence.processors.silero_shared import SharedSileroVADAnalyzer

    analyzer = SharedSileroVADAnalyzer(session=context.store.silero_session(),
                                       params=PipecatVADParams(**params.model_dump()))
    context.handles["vad_analyzer"] = analyzer
    return Stage(VADProcessor(vad_analyzer=analyzer))


SPEC = ProcessorSpec("vad", VADParams, build, "Silero voice activity detection: marks where the user speaks.")
