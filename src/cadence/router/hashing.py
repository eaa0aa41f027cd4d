"""Consistent hashing: a user keeps landing on the same replica, and only the users of a
replica that goes away move (to the replicas next on the ring)."""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


class HashRing:
    """Replicas placed at ``vnodes`` points each on a 64-bit ring."""

    def __init__(self, replicas: Iterable[str], vnodes: int = 64):
        self._points: list[tuple[int, str]] = sorted(
            (_hash(f"{replica}#{i}"), replica) for replica in replicas for i in range(vnodes)
        )
        self._keys = [point for point, _ in self._points]

    def order(self, key: str) -> list[str]:
        """Every replica, in the order ``key`` should try them (its home first)."""
        out: list[str] = []
        if not self._points:
            return out
        start = bisect.bisect(self._keys, _hash(key))
        for i in range(len(self._points)):
            replica = self._points[(start + i) % len(self._points)][1]
            if replica not in out:
                out.append(replica)
        return out

    def pick(self, key: str, exclude: set[str] | frozenset[str] = frozenset()) -> str | None:
        """The first replica for ``key`` that is not excluded."""
        return next((r for r in self.order(key) if r not in exclude), None)
