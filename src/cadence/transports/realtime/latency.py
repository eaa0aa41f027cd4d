"""Per-turn latency, reported to the client as a ``cadence.turn.latency`` event.

Strict clients skip event types they have no model for (the openai SDK hands them over
with their ``type``; pipecat's client drops them), so a Cadence-only event is safe here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loguru import logger
from pipecat.frames.frames import OutputAudioRawFrame
from pipecat.observers.base_observer import FramePushed

from cadence.timeline import TurnTimeline


class LatencyReporter(TurnTimeline):
    """A ``TurnTimeline`` that emits each turn's stage latencies when its first audio goes out.

    Only the latest turn is kept: a session of hundreds of turns must not grow a list.
    """

    def __init__(self, emit: Callable[[dict[str, Any]], None]):
        super().__init__()
        self._emit = emit

    async def on_push_frame(self, data: FramePushed) -> None:
        before = self.turns[-1].first_audio_out if self.turns else None
        await super().on_push_frame(data)
        if not self.turns:
            return
        turn = self.turns[-1]
        if before is None and turn.first_audio_out is not None and isinstance(data.frame, OutputAudioRawFrame):
            stages = {name: round(value * 1000) for name, value in turn.stage_latencies().items()}
            if "voice_to_voice" in stages:
                logger.debug("turn latency (ms): " + ", ".join(f"{k} {v}" for k, v in stages.items()))
                self._emit({"type": "cadence.turn.latency", "latency_ms": stages})
        del self.turns[:-1]
