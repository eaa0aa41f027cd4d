"""Frames seen anywhere in a session's pipeline → the session's protocol callbacks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    MetricsFrame,
    OutputAudioRawFrame,
    TTSTextFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.metrics.metrics import LLMUsageMetricsData
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.processors.frame_processor import FrameDirection

if TYPE_CHECKING:
    from cadence.transports.realtime.session import RealtimeSession


class SessionEvents(BaseObserver):
    """Turns frames seen anywhere in the pipeline into session callbacks (once per frame)."""

    def __init__(self, session: RealtimeSession):
        super().__init__()
        self._session = session
        self._seen: set[int] = set()

    async def on_push_frame(self, data: FramePushed) -> None:
        frame, source = data.frame, type(data.source).__name__
        if frame.id in self._seen or data.direction != FrameDirection.DOWNSTREAM:
            return
        session = self._session
        if isinstance(frame, VADUserStartedSpeakingFrame) and source == "VADProcessor":
            session.on_speech_started(frame.start_secs)
        elif isinstance(frame, VADUserStoppedSpeakingFrame) and source == "VADProcessor":
            session.on_speech_stopped(frame.stop_secs)
        elif isinstance(frame, UserStoppedSpeakingFrame) and source == "UserTurnProcessor":
            session.on_turn_ended()
        elif isinstance(frame, LLMFullResponseStartFrame) and "LLM" in source:
            session.on_response_started()
        elif isinstance(frame, LLMTextFrame) and "LLM" in source:
            session.on_llm_text(frame.text)
        elif isinstance(frame, TTSTextFrame) and "TTS" in source:
            session.on_spoken_text(frame.text)
        elif isinstance(frame, OutputAudioRawFrame) and source.endswith("OutputTransport"):
            session.on_audio_played(len(frame.audio) / 2 / frame.sample_rate * 1000)
        elif isinstance(frame, BotStartedSpeakingFrame) and source.endswith("OutputTransport"):
            session.on_output_started()
        elif isinstance(frame, BotStoppedSpeakingFrame) and source.endswith("OutputTransport"):
            session.on_output_stopped()
        elif isinstance(frame, MetricsFrame) and "LLM" in source:
            for item in frame.data:
                if isinstance(item, LLMUsageMetricsData):
                    session.on_usage(item.value)
        else:
            return
        self._seen.add(frame.id)
        if len(self._seen) > 10_000:
            self._seen.clear()
