"""``tts``: text to speech with Piper (pipecat's PiperTTSService).

Piper is GPL-3.0, so it lives in an optional extra; this module only declares the
params and imports the engine (``tts_piper``) when a pipeline is built with it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from cadence.stages import BuildContext, ProcessorSpec, Spec, Stage


class TTSParams(Spec):
    """Params of the ``tts`` stage."""

    voice: str = Field("en_US-joe-medium", description="Packaged Piper voice or a path to a voice .onnx file.")
    speed: float = Field(1.0, ge=0.25, le=1.5, description="Speaking rate (1.0 = the voice's own).")
    noise_scale: float | None = Field(None, ge=0, le=2, description="Piper expressiveness; null = the voice's own.")
    noise_w_scale: float | None = Field(None, ge=0, le=2, description="Piper phoneme-length variation.")
    volume: float = Field(1.0, gt=0, le=4, description="Output gain.")
    speaker: int | None = Field(None, ge=0, description="Speaker id of a multi-speaker voice; null = its default.")
    delivery_mode: Literal["STABLE", "BALANCED", "CREATIVE"] = Field(
        "BALANCED", description="How much the delivery varies: STABLE (even), BALANCED, CREATIVE (lively).")
    steering: str | None = Field(None, max_length=200, description="A steering line for every reply, as"
                                 " '[say with quiet intensity]' would be at its start (null = none).")
    sentiment: bool = Field(True, description="Nudge the delivery of untagged sentences by their sentiment (VADER).")
    first_clause_words: int = Field(
        3, ge=0, description="Speak a reply's first clause alone (at a comma, colon, dash) once it has this many "
        "words, so the voice starts before the first sentence is written; 0 = whole sentences only.")
    first_phrase_words: int = Field(
        5, ge=0, description="A first sentence without such a clause goes ahead at a phrase (before 'of', 'and',"
        " 'with', ...) once it has more than this many words, or at any word past twice as many; 0 = off.")


def build(params: TTSParams, context: BuildContext) -> Stage:
    """A Piper TTS service on the process-wide shared voice."""
    from cadence.processors.steering import SteeringTags
    from cadence.processors.tts_piper import SharedPiperTTSService
    from cadence.voice.delivery import Delivery

    delivery = Delivery(params.delivery_mode, params.steering, params.sentiment)
    service = SharedPiperTTSService(voice=context.store.piper_voice(params.voice), voice_name=params.voice,
                                    speed=params.speed, noise_scale=params.noise_scale,
                                    noise_w_scale=params.noise_w_scale, volume=params.volume,
                                    first_clause_words=params.first_clause_words,
                                    first_phrase_words=params.first_phrase_words,
                                    vad=context.roles.vad_analyzer,  # its first audio waits out speech beginning
                                    voice_loader=context.store.piper_voice, delivery=delivery, speaker_id=params.speaker)
    context.roles.tts = service
    context.roles.steering = SteeringTags()  # tags leave the text before the service and the transcript see it
    return Stage(service, head=[context.roles.steering])


SPEC = ProcessorSpec("tts", TTSParams, build, "Piper text-to-speech, sentence by sentence, steered by tags in the text (GPL extra: cadence[piper]).",
                     hears_audio=False)
