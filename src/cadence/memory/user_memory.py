"""A session's memory of its user: durable facts, the rolling summary and the recent turns,
loaded when the user is known and written back at the end of every turn.

Facts enter the prompt two ways. The pinned block (persona | character | **facts +
summary** | turns) is a snapshot that changes only when old turns are folded, so the KV
cache of the prefix keeps being reused; the facts that match the user's latest words and
are not pinned go after the history (like lore), for that request only.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from loguru import logger

from cadence.memory.facts import ExtractedFact, LLMFactExtractor, extract_facts
from cadence.memory.summary import RollingSummary
from cadence.store import Fact, MemoryState, Store, StoreError
from cadence.store.base import MAX_FACTS_PER_USER, MAX_RECENT_MESSAGES, search_terms

FACTS_HEADER = "What you know about the user:"
RELEVANT_HEADER = "What you know about the user that matters now:"


def pin_facts(facts: list[Fact], max_tokens: int) -> list[str]:
    """The facts for the stable block: named ones first, then the oldest, within ``max_tokens``
    (about four characters a token)."""
    budget = max_tokens * 4
    pinned, used = [], len(FACTS_HEADER)
    for fact in sorted(facts, key=lambda f: (f.slot is None, f.id)):
        if used + len(fact.text) + 3 <= budget:
            pinned.append(fact.text)
            used += len(fact.text) + 3
    return pinned


def facts_block(texts: list[str]) -> str:
    return FACTS_HEADER + "\n" + "\n".join(f"- {text}" for text in texts)


@dataclass
class MemoryOptions:
    """Per-session memory settings (the YAML's ``memory:`` section, then ``providerData.memory``)."""

    persist: bool = True  # keep the user's memory in the store (needs a named user)
    auto_summarize: bool = True  # fold old turns into the rolling summary (else they are dropped)
    extract_facts: bool = True
    relevant_facts: int = 3  # facts retrieved per turn beyond the pinned ones
    facts_max_tokens: int = 200  # the pinned facts block's budget
    resume_window_s: float = 900.0  # a session for the same user within this continues the last one


class UserMemory:
    """What one session knows about its user; persisted through ``store`` when the user is named."""

    def __init__(self, summary: RollingSummary, store: Store | None = None, options: MemoryOptions | None = None,
                 extractor: LLMFactExtractor | None = None, service: Any = None):
        self.summary = summary
        self.store = store
        self._service = service  # opens the store on first use (in the session's event loop)
        self.options = options or MemoryOptions()
        summary.enabled = self.options.auto_summarize
        self.extractor = extractor
        self.user: str | None = None
        self.resumed = False
        self.known: list[Fact] = []  # the user's facts (bounded like the store's)
        self.pinned: list[str] = []  # the facts in the prompt's stable block
        self.saves = 0
        self.store_errors = 0  # failed store calls this session (reported in the state, never silent)
        self._next_local_id = 1
        self._background: set[asyncio.Task] = set()

    @property
    def _store_errors(self) -> tuple[type[BaseException], ...]:
        return self.store.errors if self.store is not None else (StoreError, OSError)

    @property
    def persistent(self) -> bool:
        return self.store is not None and self.user is not None and self.options.persist

    async def attach(self, user: str | None, live_messages: int = 0) -> list[dict[str, Any]]:
        """Load what is known about ``user``; the recent turns to continue with when the last
        session ended within the resume window and this one has no turns yet (else [])."""
        self.user = user or None
        if self.store is None and self._service is not None and self.user is not None:
            try:
                self.store = await self._service.open()
            except (StoreError, OSError) as exc:
                logger.error(f"memory: the store could not be opened: {exc}")
        if not self.persistent:
            self.pin()
            return []
        try:
            self.known = await self.store.facts(self.user)
            state = await self.store.load_state(self.user)
        except self._store_errors as exc:
            self.store_errors += 1
            logger.error(f"memory: could not load a user's memory: {exc}")
            self.pin()
            return []
        restored: list[dict[str, Any]] = []
        if state is not None:
            if state.summary and not self.summary.text:
                self.summary.text = state.summary
            recent = [m for m in state.recent if m.get("role") in ("user", "assistant")]
            fresh = time.time() - state.updated_at <= self.options.resume_window_s
            if fresh and not live_messages:
                restored, self.resumed = recent, True
            elif recent and self.options.auto_summarize:
                self.summary.fold(recent)  # the last session's turns, summarised in the background
        self.pin()
        return restored

    def pin(self) -> None:
        """Snapshot the facts that go in the stable block: named ones first, then the oldest,
        within the budget (about four characters a token)."""
        self.pinned = pin_facts(self.known, self.options.facts_max_tokens)

    def block(self) -> str:
        """The memory part of the system prompt: pinned facts, then the rolling summary."""
        parts = []
        if self.pinned:
            parts.append(facts_block(self.pinned))
        if summary := self.summary.block():
            parts.append(summary)
        return "\n\n".join(parts)

    async def relevant(self, query: str) -> list[str]:
        """Facts matching ``query`` that are not pinned, best first."""
        limit = self.options.relevant_facts
        if limit <= 0 or not query.strip():
            return []
        pinned = set(self.pinned)
        if self.persistent:
            try:
                found = await self.store.search_facts(self.user, query, limit + len(pinned))
            except self._store_errors as exc:
                self.store_errors += 1
                logger.warning(f"memory: fact search failed: {type(exc).__name__}")
                return []
            return [f.text for f in found if f.text not in pinned][:limit]
        terms = set(search_terms(query))
        scored = [(len(terms & set(search_terms(f.text))), f.text) for f in self.known if f.text not in pinned]
        return [text for score, text in sorted(scored, key=lambda s: -s[0]) if score > 0][:limit]

    async def end_of_turn(self, user_text: str, recent: list[dict[str, Any]]) -> None:
        """After a reply: remember the facts in the user's words and write the memory state
        (durable when this returns). A model extractor, if any, runs after, in the background."""
        if self.options.extract_facts and user_text:
            for fact in extract_facts(user_text):
                await self._remember(fact)
            if self.extractor is not None:
                task = asyncio.get_running_loop().create_task(self._extract_with_model(user_text))
                self._background.add(task)
                task.add_done_callback(self._background.discard)
        await self.save(recent)

    async def save(self, recent: list[dict[str, Any]]) -> None:
        """Write the summary and the turns not yet in it (the pending ones first)."""
        if not self.persistent:
            return
        turns = [*self.summary.pending, *recent][-MAX_RECENT_MESSAGES:]
        try:
            await self.store.save_state(self.user, MemoryState(summary=self.summary.text, recent=turns))
            self.saves += 1
        except self._store_errors as exc:
            self.store_errors += 1
            logger.error(f"memory: could not save a user's memory: {exc}")

    async def _extract_with_model(self, text: str) -> None:
        try:
            for fact in await self.extractor.extract(text, self.user):
                await self._remember(fact)
        except Exception as exc:  # the rules' facts are already in; the model's are a bonus
            logger.warning(f"memory: the model fact extractor failed: {type(exc).__name__}")

    async def _remember(self, extracted: ExtractedFact) -> None:
        if self.persistent:
            try:
                fact = await self.store.add_fact(self.user, extracted.text, extracted.slot)
            except self._store_errors as exc:
                self.store_errors += 1
                logger.error(f"memory: could not store a fact: {exc}")
                return
        else:
            fact = Fact(id=self._next_local_id, text=extracted.text, slot=extracted.slot, updated_at=time.time())
            self._next_local_id += 1
        self.known = [f for f in self.known if f.id != fact.id and f.text != fact.text
                      and not (fact.slot and f.slot == fact.slot)]
        self.known.append(fact)
        del self.known[: max(0, len(self.known) - MAX_FACTS_PER_USER)]

    def configure(self, **changes: Any) -> None:
        """Per-session settings (``providerData.memory``)."""
        for key, value in changes.items():
            setattr(self.options, key, value)
        self.summary.enabled = self.options.auto_summarize
        self.pin()

    def state(self) -> dict[str, Any]:
        """What ``session.updated`` reports."""
        return {"user": self.user, "persistent": self.persistent, "resumed": self.resumed,
                "facts": len(self.known), "pinned_facts": len(self.pinned),
                "summary_chars": len(self.summary.text), "summaries": self.summary.folds,
                "store_errors": self.store_errors}

    def close(self) -> None:
        for task in list(self._background):
            task.cancel()
