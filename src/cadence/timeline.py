"""Per-turn latency timeline, recorded by watching frames move through a pipeline.

Times are the pipeline clock's, in seconds. ``speech_end`` is when the user actually
stopped talking: VAD reports the stop ``stop_secs`` later, so that is subtracted.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipecat.frames.frames import (
    LLMTextFrame,
    OutputAudioRawFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.observers.base_observer import BaseObserver, FramePushed

from cadence.frames import BackchannelAudioFrame


@dataclass
class TurnTimes:
    """When each stage of one user turn finished its first piece of work (seconds)."""

    speech_end: float | None = None
    turn_decided: float | None = None
    transcribed: float | None = None
    llm_first_token: float | None = None
    tts_first_audio: float | None = None
    first_audio_out: float | None = None

    def stage_latencies(self) -> dict[str, float]:
        """Per-stage durations and voice-to-voice, for the stages this turn reached."""
        out: dict[str, float] = {}
        pairs = {
            "turn_decision": (self.speech_end, self.turn_decided),
            "stt": (self.speech_end, self.transcribed),
            "llm_first_token": (max(filter(None, [self.turn_decided, self.transcribed]), default=None), self.llm_first_token),
            "tts_first_audio": (self.llm_first_token, self.tts_first_audio),
            "voice_to_voice": (self.speech_end, self.first_audio_out),
        }
        for name, (start, end) in pairs.items():
            if start is not None and end is not None:
                out[name] = end - start
        return out


class TurnTimeline(BaseObserver):
    """A pipecat observer that fills one ``TurnTimes`` per user turn."""

    def __init__(self) -> None:
        super().__init__()
        self.turns: list[TurnTimes] = []

    async def on_push_frame(self, data: FramePushed) -> None:
        frame = data.frame
        now = data.timestamp / 1e9
        if isinstance(frame, UserStartedSpeakingFrame):
            if not self.turns or self.turns[-1].speech_end is not None:
                self.turns.append(TurnTimes())
            return
        if not self.turns:
            return
        turn = self.turns[-1]
        if isinstance(frame, VADUserStoppedSpeakingFrame):
            turn.speech_end = now - frame.stop_secs
            turn.turn_decided = turn.transcribed = None
        elif isinstance(frame, UserStoppedSpeakingFrame) and turn.turn_decided is None:
            turn.turn_decided = now
        elif isinstance(frame, TranscriptionFrame) and turn.transcribed is None:
            turn.transcribed = now
        if turn.turn_decided is None:
            return  # a reply still going out is an earlier one's (e.g. dropped when this turn resumed)
        if isinstance(frame, LLMTextFrame) and turn.llm_first_token is None and frame.text.strip():
            turn.llm_first_token = now
        elif isinstance(frame, TTSAudioRawFrame) and turn.tts_first_audio is None:
            turn.tts_first_audio = now
        if isinstance(frame, OutputAudioRawFrame) and turn.first_audio_out is None and not isinstance(
                frame, BackchannelAudioFrame):  # a listener's "mm-hm" is no reply
            if type(data.source).__name__.endswith("OutputTransport"):
                turn.first_audio_out = now
