"""What every store offers: per-user facts, searchable; the user's memory state
(rolling summary and recent turns); forgetting that is real deletion."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from cadence.errors import CadenceError

MAX_FACTS_PER_USER = 500  # beyond this the least recently confirmed facts go
MAX_RECENT_MESSAGES = 200  # recent turns kept per user (the live context's tail)
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    "a an and are as at be but by do does did for from have has had he her him his how i if in is it its"
    " me my of on or our she so than that the their them they this to was we were what when where which who"
    " why will with you your yours am can could would should about just like".split()
)


class StoreError(CadenceError):
    """The store could not be opened or used (a clear message for the operator)."""


@dataclass(frozen=True)
class Fact:
    """One durable thing known about a user, in the third person ('The user has a dog named Rex.').

    ``slot`` names facts that replace each other ('name': a new name replaces the old one).
    """

    id: int
    text: str
    slot: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "slot": self.slot,
                "created_at": self.created_at, "updated_at": self.updated_at}


@dataclass
class MemoryState:
    """A user's conversation memory: the rolling summary and the most recent turns."""

    summary: str = ""
    recent: list[dict[str, Any]] = field(default_factory=list)
    updated_at: float = 0.0


def search_terms(text: str, limit: int = 16) -> list[str]:
    """The words of ``text`` worth searching facts for (lower-case, no stop words, no repeats)."""
    words: list[str] = []
    for word in _WORD.findall(text.lower()):
        if len(word) > 1 and word not in _STOP and word not in words:
            words.append(word)
    return words[:limit]


class Store(ABC):
    """The persistence layer: memory today (usage and voices next). Nothing else opens a database."""

    url: str
    # What a failing call may raise: the store's own error, the OS's, and its driver's
    # (a subclass adds them), so callers can degrade without catching everything.
    errors: tuple[type[BaseException], ...] = (StoreError, OSError)

    @abstractmethod
    async def open(self) -> None:
        """Connect and apply pending migrations."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def schema_version(self) -> int: ...

    @abstractmethod
    async def add_fact(self, user: str, text: str, slot: str | None = None) -> Fact:
        """Remember ``text``: a fact with the same slot is replaced, the same text is only
        confirmed (its time renewed); the user keeps at most ``MAX_FACTS_PER_USER``."""

    @abstractmethod
    async def facts(self, user: str) -> list[Fact]:
        """All of the user's facts, oldest first."""

    @abstractmethod
    async def search_facts(self, user: str, query: str, limit: int = 5) -> list[Fact]:
        """The user's facts that best match ``query`` (full-text ranking), best first."""

    @abstractmethod
    async def delete_fact(self, user: str, fact_id: int) -> bool: ...

    @abstractmethod
    async def load_state(self, user: str) -> MemoryState | None: ...

    @abstractmethod
    async def save_state(self, user: str, state: MemoryState) -> None:
        """Durable when it returns (the turn's memory survives a SIGKILL right after)."""

    @abstractmethod
    async def forget(self, user: str) -> bool:
        """Delete everything known about the user; whether there was anything."""
