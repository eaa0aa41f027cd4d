"""Apply a Realtime session's settings to its running pipeline (mid-session changes included)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipecat.audio.vad.vad_analyzer import VADParams
from pipecat.frames.frames import LLMConfigureOutputFrame, LLMUpdateSettingsFrame, STTUpdateSettingsFrame
from pipecat.services.settings import LLMSettings

from cadence.errors import ConfigError
from cadence.transports.realtime.session_state import turn_settings

if TYPE_CHECKING:
    from cadence.transports.realtime.session import RealtimeSession


async def apply_session(session: RealtimeSession) -> None:
    """Turn detection, instructions, model, output length, speed and transcription prompt."""
    handles = session.pipeline.context.handles
    settings = session.turn = turn_settings(session.state)
    if "vad_analyzer" in handles:
        analyzer = handles["vad_analyzer"]
        current = analyzer.params
        analyzer.set_params(VADParams(confidence=settings.vad_confidence, start_secs=current.start_secs,
                                      stop_secs=settings.vad_stop_secs, min_volume=current.min_volume))
    if "turn_analyzer" in handles:
        handles["turn_analyzer"].configure(threshold=settings.end_of_turn_threshold,
                                           stop_secs=settings.max_wait_secs)
    if "turn_start" in handles:
        # pipecat takes enable_interruptions only at construction; this is the one place it
        # is changed afterwards, so interrupt_response can be switched mid-session.
        handles["turn_start"]._enable_interruptions = settings.interrupt_response
    session.gate.automatic = settings.mode is not None and settings.create_response
    max_tokens = session.state.get("max_output_tokens")
    await session.pipeline.task.queue_frame(LLMUpdateSettingsFrame(delta=LLMSettings(
        model=effective_model(session),
        system_instruction=session.state.get("instructions") or "",
        max_tokens=max_tokens if isinstance(max_tokens, int) else session.default_max_tokens,
    )))
    transcription = session.state["audio"]["input"].get("transcription") or {}
    if session.stt_params is not None:
        from pipecat.services.whisper.stt import WhisperSTTService  # only when an stt stage exists

        # The model that runs is the configured one: say so rather than echo another name.
        transcription["model"] = session.stt_params.model
        await session.pipeline.task.queue_frame(STTUpdateSettingsFrame(
            delta=WhisperSTTService.Settings(initial_prompt=transcription.get("prompt"))))
    tts = handles.get("tts")
    if tts is not None:
        tts.set_speed(float(session.state["audio"]["output"].get("speed") or 1.0))
    await session.pipeline.task.queue_frame(
        LLMConfigureOutputFrame(skip_tts=session.state.get("output_modalities") == ["text"]))


def effective_model(session: RealtimeSession) -> str | None:
    """The router model this session's replies come from: the session's ``model`` when the
    router knows it (e.g. ``gpu/Qwen/Qwen2.5-7B-Instruct``), otherwise the pipeline's own."""
    requested = session.state.get("model")
    try:
        session.factory.router.check_model(requested)
        model = requested
    except ConfigError:
        model = session.default_model
    session.state["model"] = model
    return model
