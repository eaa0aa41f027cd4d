"""Per-replica health: a replica that failed is skipped until its cooldown ends.

A replica that answered 429 with ``Retry-After`` cools down for exactly that long, and is
not even tried as a last resort before then: asking again early only earns another 429.
"""

from __future__ import annotations

import time


class Health:
    """Remembers failures; ``usable`` is False while a replica cools down."""

    def __init__(self, cooldown_s: float, clock=time.monotonic):
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._down_until: dict[str, float] = {}
        self._limited_until: dict[str, float] = {}  # provider/replica/model → when it may be asked again

    def usable(self, replica: str) -> bool:
        """Whether ``replica`` may be tried now (healthy, or its cooldown has ended)."""
        return self._clock() >= self._down_until.get(replica, 0.0)

    def limited_for(self, key: str) -> float:
        """Seconds until a rate-limited ``key`` (provider/replica/model) asked to be retried (0: not limited)."""
        return max(0.0, self._limited_until.get(key, 0.0) - self._clock())

    def failed(self, replica: str) -> None:
        """Start (or restart) ``replica``'s cooldown."""
        self._down_until[replica] = self._clock() + self.cooldown_s

    def limit(self, key: str, seconds: float) -> None:
        """``key`` (provider/replica/model) answered 429 with ``Retry-After: seconds``."""
        now = self._clock()
        self._limited_until = {k: t for k, t in self._limited_until.items() if t > now}  # bounded by live limits
        self._limited_until[key] = now + seconds

    def succeeded(self, replica: str) -> None:
        """Mark ``replica`` healthy again."""
        self._down_until.pop(replica, None)

    def cooling(self) -> list[str]:
        """Replicas now in cooldown."""
        now = self._clock()
        return [r for r, until in self._down_until.items() if until > now]
