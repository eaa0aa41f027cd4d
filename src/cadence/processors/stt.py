"""``stt``: speech to text with faster-whisper (pipecat's WhisperSTTService)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from cadence.stages import BuildContext, ProcessorSpec, Spec, Stage


class STTParams(Spec):
    """Params of the ``stt`` stage."""

    model: str = Field(
        "whisper-tiny.en", description="Packaged Whisper model or a local CTranslate2 model folder."
    )
    language: str = Field("en", description="Language code of the speech.")
    compute_type: str = Field("int8", description="CTranslate2 compute type (int8, float32, ...).")
    no_speech_prob: float = Field(0.4, ge=0, le=1, description="Drop segments Whisper thinks are not speech.")
    prompt: str | None = Field(None, description="Text that steers spelling and style (Whisper's initial prompt).")
    beam_size: int = Field(1, ge=1, le=10, description="Beam width; 1 (greedy) is fastest.")
    window_secs: float = Field(
        15.0, ge=0, le=30, description="Encoder window for utterances shorter than it (Whisper's is 30 s; 15 s "
        "is ~4x faster with the same transcripts on our test set, shorter repeats short words; 0 = 30 s).")
    eager_end_of_turn: bool = Field(
        False, description="Start the reply on each transcript while the turn stage decides whether the turn"
        " ended (held until it has; dropped if the user goes on). Pays off when the LLM does not share the CPU"
        " with the turn models: on 2 cores the embedded stack was no faster with it (the note in the README).")
    p99_latency_secs: float = Field(
        0.8, gt=0, description="Slowest expected transcription after speech ends (pipecat's ttfs_p99_latency)."
    )


def build(params: STTParams, context: BuildContext) -> Stage:
    """A WhisperSTTService running the process-wide shared Whisper model."""
    from pipecat.services.whisper.stt import WhisperSTTService
    from pipecat.transcriptions.language import Language

    from cadence.processors.whisper_stt import SharedWhisperSTTService

    settings: Any = WhisperSTTService.Settings(
        model=params.model,
        language=Language(params.language),
        no_speech_prob=params.no_speech_prob,
        initial_prompt=params.prompt,
    )
    service = SharedWhisperSTTService(
        whisper_model=context.store.whisper(params.model, compute_type=params.compute_type),
        beam_size=params.beam_size,
        window_secs=params.window_secs,
        vad_analyzer=context.roles.vad_analyzer,
        device="cpu",
        compute_type=params.compute_type,
        settings=settings,
        ttfs_p99_latency=params.p99_latency_secs,
        enable_eager_end_of_turn=params.eager_end_of_turn,
    )
    context.roles.stt = service
    return Stage(service)


SPEC = ProcessorSpec("stt", STTParams, build, "faster-whisper speech-to-text on each spoken segment.")
