"""``tts``: text to speech with Piper (pipecat's PiperTTSService).

Piper is GPL-3.0, so it lives in an optional extra; this module only declares the
params and imports the engine (``tts_piper``) when a pipeline is built with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from cadence.pipelines.registry import ProcessorSpec
from cadence.pipelines.schema import Spec

if TYPE_CHECKING:
    from cadence.pipelines.builder import BuildContext, Stage


class TTSParams(Spec):
    """Params of the ``tts`` stage."""

    voice: str = Field("en_US-joe-medium", description="Packaged Piper voice or a path to a voice .onnx file.")
    speed: float = Field(1.0, ge=0.25, le=1.5, description="Speaking rate (1.0 = the voice's own).")
    noise_scale: float | None = Field(None, ge=0, le=2, description="Piper expressiveness; null = the voice's own.")
    noise_w_scale: float | None = Field(None, ge=0, le=2, description="Piper phoneme-length variation.")
    volume: float = Field(1.0, gt=0, le=4, description="Output gain.")


def build(params: TTSParams, context: BuildContext) -> Stage:
    """A Piper TTS service on the process-wide shared voice."""
    from cadence.pipelines.builder import Stage
    from cadence.processors.tts_piper import SharedPiperTTSService

    service = SharedPiperTTSService(voice=context.store.piper_voice(params.voice), params=params)
    context.handles["tts"] = service
    return Stage(service)


SPEC = ProcessorSpec("tts", TTSParams, build, "Piper text-to-speech, sentence by sentence (GPL extra: cadence[piper]).")
