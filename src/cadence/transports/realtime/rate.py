"""Events per second per session: a token bucket for audio appends and one for the rest.

A client over the rate is slowed down, not refused: its next message is read only once a
token is there, so TCP holds the rest back and nothing it sent is lost (an upload in 20 ms
chunks, a long history re-sent at once). Appends are bounded in bytes by the input queue;
their rate only tames a flood of tiny messages.
"""

from __future__ import annotations

import asyncio
import time

APPENDS_PER_SEC, APPEND_BURST = 1000, 2000  # 20 ms chunks of a 15-minute upload pass in 45 s
EVENTS_PER_SEC, EVENT_BURST = 50, 200


class _Bucket:
    def __init__(self, rate: float, burst: float):
        self.rate, self.burst = rate, burst
        self._tokens, self._at = burst, time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class EventRate:
    """The rate limits of one session's client events."""

    def __init__(self):
        self._appends = _Bucket(APPENDS_PER_SEC, APPEND_BURST)
        self._events = _Bucket(EVENTS_PER_SEC, EVENT_BURST)  # read at construction: tests may raise them

    async def wait(self, event_type: str) -> None:
        """Return once this event is within its rate (at once, for a client under it)."""
        bucket = self._appends if event_type == "input_audio_buffer.append" else self._events
        while not bucket.take():
            await asyncio.sleep(1 / bucket.rate)
