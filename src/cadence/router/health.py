"""Per-replica health: a replica that failed is skipped until its cooldown ends."""

from __future__ import annotations

import time


class Health:
    """Remembers failures; ``usable`` is False while a replica cools down."""

    def __init__(self, cooldown_s: float, clock=time.monotonic):
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._down_until: dict[str, float] = {}

    def usable(self, replica: str) -> bool:
        """Whether ``replica`` may be tried now (healthy, or its cooldown has ended)."""
        return self._clock() >= self._down_until.get(replica, 0.0)

    def failed(self, replica: str) -> None:
        """Start (or restart) ``replica``'s cooldown."""
        self._down_until[replica] = self._clock() + self.cooldown_s

    def succeeded(self, replica: str) -> None:
        """Mark ``replica`` healthy again."""
        self._down_until.pop(replica, None)

    def cooling(self) -> list[str]:
        """Replicas now in cooldown."""
        now = self._clock()
        return [r for r, until in self._down_until.items() if until > now]
