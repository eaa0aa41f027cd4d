"""Per-turn latency, reported to the client as a ``cadence.turn.latency`` event and to
``/metrics`` as ``cadence_turn_latency_seconds{stage}`` (no per-user labels: cardinality).

The event is sent only to a session that asked for it (``providerData.turn_latency: true``):
some clients fail on any event type OpenAI does not define (the openai-agents SDK turns
each into an ``error`` for the app), so no client gets a Cadence-only event unasked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from weakref import WeakKeyDictionary

from loguru import logger
from prometheus_client import CollectorRegistry, Histogram
from pipecat.frames.frames import OutputAudioRawFrame
from pipecat.observers.base_observer import FramePushed

from cadence.timeline import TurnTimeline


_HISTOGRAMS: WeakKeyDictionary[CollectorRegistry, Histogram] = WeakKeyDictionary()


def turn_histogram(registry: CollectorRegistry) -> Histogram:
    """The process's per-stage turn latency histogram in ``registry`` (made once)."""
    if registry not in _HISTOGRAMS:
        _HISTOGRAMS[registry] = Histogram(
            "cadence_turn_latency_seconds", "Per user turn, from the end of speech: turn decision, final transcript,"
            " LLM first token (after both), TTS first audio (after the first token), voice to voice", ("stage",),
            registry=registry, buckets=(0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0))
    return _HISTOGRAMS[registry]


class LatencyReporter(TurnTimeline):
    """A ``TurnTimeline`` that emits each turn's stage latencies when its first audio goes out.

    Only the latest turn is kept: a session of hundreds of turns must not grow a list.
    """

    def __init__(self, emit: Callable[[dict[str, Any]], None], registry: CollectorRegistry | None = None,
                 wanted: Callable[[], bool] = lambda: True):
        super().__init__()
        self._emit = emit
        self._wanted = wanted  # whether the client asked for the event (the metrics are kept anyway)
        self._histogram = turn_histogram(registry) if registry is not None else None

    async def on_push_frame(self, data: FramePushed) -> None:
        before = self.turns[-1].first_audio_out if self.turns else None
        await super().on_push_frame(data)
        if not self.turns:
            return
        turn = self.turns[-1]
        if before is None and turn.first_audio_out is not None and isinstance(data.frame, OutputAudioRawFrame):
            latencies = turn.stage_latencies()
            stages = {name: round(value * 1000) for name, value in latencies.items()}
            if "voice_to_voice" in stages:
                if self._histogram is not None:
                    for name, value in latencies.items():
                        self._histogram.labels(name).observe(max(0.0, value))
                logger.debug("turn latency (ms): " + ", ".join(f"{k} {v}" for k, v in stages.items()))
                if self._wanted():
                    self._emit({"type": "cadence.turn.latency", "latency_ms": stages})
        del self.turns[:-1]
