"""The process's memory service: the store (opened once, on first use), the settings of the
``memory:`` section, and a ``UserMemory`` per session."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from cadence.memory.facts import LLMFactExtractor, extract_facts
from cadence.memory.summary import RollingSummary
from cadence.memory.user_memory import MemoryOptions, UserMemory, facts_block, pin_facts
from cadence.store import Fact, Store, default_store_url, make_store


class MemoryService:
    """Per-user memory for every session of this process, kept in one store."""

    def __init__(self, settings: Any, router: Any, base_dir: Path | None = None):
        self.settings = settings  # cadence.pipelines.schema.MemorySection
        self.router = router
        self.store: Store | None = None
        if settings.persist:
            self.store = make_store(settings.store or default_store_url(), base_dir)
        self._opened = False
        self._lock: asyncio.Lock | None = None

    def options(self) -> MemoryOptions:
        """The YAML's settings as a session starts with them."""
        s = self.settings
        return MemoryOptions(persist=s.persist, auto_summarize=s.auto_summarize, extract_facts=s.extract_facts,
                             relevant_facts=s.relevant_facts, facts_max_tokens=s.facts_max_tokens,
                             resume_window_s=s.resume_window_s)

    async def open(self) -> Store | None:
        """The store, opened (and migrated) the first time it is needed."""
        if self.store is None or self._opened:
            return self.store
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:
            if not self._opened:
                await self.store.open()
                self._opened = True
        return self.store

    async def close(self) -> None:
        if self.store is not None and self._opened:
            await self.store.close()
            self._opened = False

    def for_session(self, summary: RollingSummary) -> UserMemory:
        """A session's memory (attached to its user when the session starts)."""
        extractor = None
        if self.settings.memory_model:
            extractor = LLMFactExtractor(self.router, self.settings.memory_model)
        return UserMemory(summary, store=None, options=self.options(), extractor=extractor, service=self)

    async def shape_chat(self, body: dict[str, Any]) -> dict[str, Any]:
        """A router API request that names its ``user`` (``memory.router_api``): facts from the
        user's last message are remembered, and the user's facts ride at the end of the system
        prompt (changing only when the facts do, so the cached prefix before them holds)."""
        user, messages = body.get("user"), body.get("messages")
        if not (isinstance(user, str) and user and isinstance(messages, list) and messages):
            return body
        store = await self.open()
        if store is None:
            return body
        last = next((m for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "user"), None)
        if last is not None and self.settings.extract_facts and isinstance(last.get("content"), str):
            for fact in extract_facts(last["content"]):
                await store.add_fact(user, fact.text, fact.slot)
        pinned = pin_facts(await store.facts(user), self.settings.facts_max_tokens)
        if not pinned:
            return body
        block = facts_block(pinned)
        first = messages[0]
        if isinstance(first, dict) and first.get("role") == "system" and isinstance(first.get("content"), str):
            messages = [{**first, "content": f"{first['content']}\n\n{block}"}, *messages[1:]]
        else:
            messages = [{"role": "system", "content": block}, *messages]
        return {**body, "messages": messages}

    # -- REST (the operator's and the user's view) --------------------------------------

    async def describe(self, user: str) -> dict[str, Any] | None:
        """A user's facts and summary, or None when nothing is known."""
        store = await self._required()
        facts: list[Fact] = await store.facts(user)
        state = await store.load_state(user)
        if not facts and state is None:
            return None
        return {"user": user, "facts": [f.public() for f in facts],
                "summary": state.summary if state else "",
                "recent_turns": len(state.recent) if state else 0,
                "updated_at": state.updated_at if state else None}

    async def forget(self, user: str) -> bool:
        return await (await self._required()).forget(user)

    async def delete_fact(self, user: str, fact_id: int) -> bool:
        return await (await self._required()).delete_fact(user, fact_id)

    async def _required(self) -> Store:
        store = await self.open()
        if store is None:
            raise LookupError("memory is not persisted on this server (memory.persist is false)")
        return store
