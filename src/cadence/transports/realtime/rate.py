"""Events per second per session: a token bucket for audio appends and one for the rest.

Appends are sized by the input queue's own bound (bytes, ``input_audio.MAX_QUEUE_SECS``), so
their rate limit only stops a flood of tiny messages; every other event costs a parse, a
validation and often pipeline work, so it is held to a rate no client needs to exceed. An
event over the rate is refused with an ``error`` naming the limit; the session goes on.
"""

from __future__ import annotations

import time

from cadence.transports.realtime.protocol import ProtocolError

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
        self._events = _Bucket(EVENTS_PER_SEC, EVENT_BURST)

    def check(self, event_type: str) -> None:
        """ProtocolError ``rate_limit_exceeded`` when this event is over its rate."""
        if event_type == "input_audio_buffer.append":
            if not self._appends.take():
                raise ProtocolError("rate_limit_exceeded", f"more than {APPENDS_PER_SEC} input_audio_buffer.append"
                                    f" events a second (bursts of {APPEND_BURST}); this one was dropped. Send"
                                    " larger chunks", param="type")
        elif not self._events.take():
            raise ProtocolError("rate_limit_exceeded", f"more than {EVENTS_PER_SEC} client events a second (bursts"
                                f" of {EVENT_BURST}), audio appends aside; this one was dropped", param="type")
