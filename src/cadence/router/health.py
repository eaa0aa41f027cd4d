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
        self._limited_until: dict[str, float] = {}  # replicas that said when to come back

    def usable(self, replica: str) -> bool:
        """Whether ``replica`` may be tried now (healthy, or its cooldown has ended)."""
        return self._clock() >= self._down_until.get(replica, 0.0)

    def limited_for(self, replica: str) -> float:
        """Seconds until a rate-limited ``replica`` asked to be retried (0 when it did not)."""
        return max(0.0, self._limited_until.get(replica, 0.0) - self._clock())

    def failed(self, replica: str, retry_after: float | None = None) -> None:
        """Start (or restart) ``replica``'s cooldown: ``retry_after`` seconds when the
        replica sent a ``Retry-After``, else ``cooldown_s``."""
        now = self._clock()
        if retry_after is not None:
            self._limited_until[replica] = now + retry_after
            self._down_until[replica] = now + retry_after
        else:
            self._limited_until.pop(replica, None)
            self._down_until[replica] = now + self.cooldown_s

    def succeeded(self, replica: str) -> None:
        """Mark ``replica`` healthy again."""
        self._down_until.pop(replica, None)
        self._limited_until.pop(replica, None)

    def cooling(self) -> list[str]:
        """Replicas now in cooldown."""
        now = self._clock()
        return [r for r, until in self._down_until.items() if until > now]
