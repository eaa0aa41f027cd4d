"""A rolling summary of the turns folded out of a session's context.

Turns handed to ``fold`` are summarised in the background, through the router, together
with the summary so far; the reply's path never waits for it. The summary text changes
only when a summary is finished, so the prompt prefix around it stays stable (KV-cache
reuse) between folds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from loguru import logger

PROMPT = (
    "You keep the memory of a long conversation between a user and an assistant. Write the new"
    " memory: at most {words} words of plain sentences about what matters for going on with it -"
    " facts the user told about themself, their people, pets, likes, plans, and what was agreed."
    " Keep every fact of the earlier memory that still holds. Say 'The user' for the user. No preamble."
)
BLOCK = "What you remember of the conversation so far: {summary}"


class RollingSummary:
    """The summary of a session's folded turns; bounded in words and in turns waiting."""

    MAX_PENDING = 400  # folded messages waiting for the summariser; the oldest go first

    def __init__(self, router: Any, *, model: Callable[[], str], user: str | None = None, max_tokens: int = 160):
        self._router = router
        self._model = model
        self._user = user
        self.max_tokens = max_tokens
        self.text = ""
        self.folds = 0  # summaries made
        self.failures = 0
        self.last_seconds: float | None = None
        self._pending: list[dict[str, Any]] = []
        self._in_flight: list[dict[str, Any]] = []  # the turns being summarised now
        self.enabled = True  # providerData.memory.auto_summarize: off, folded turns are dropped
        self._task: asyncio.Task | None = None
        self.on_update: Callable[[], Awaitable[None]] | None = None  # called when a new summary lands

    def block(self) -> str:
        """The summary as it goes into the system prompt ('' before the first fold)."""
        return BLOCK.format(summary=self.text) if self.text else ""

    def fold(self, messages: list[dict[str, Any]]) -> None:
        """Summarise ``messages`` (turns leaving the context) in the background."""
        if not self.enabled:
            return
        self._pending.extend(m for m in messages if m.get("role") in ("user", "assistant", "tool"))
        del self._pending[: max(0, len(self._pending) - self.MAX_PENDING)]
        if self._pending and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._run())

    @property
    def pending(self) -> list[dict[str, Any]]:
        """Turns folded and not yet in the summary (being summarised first), as role + text."""
        return [{"role": m.get("role", "user"), "content": _text(m)} for m in (*self._in_flight, *self._pending)]

    def cancel(self) -> None:
        """Stop summarising (the session ended)."""
        self._pending.clear()
        if self._task is not None:
            self._task.cancel()

    async def settled(self) -> None:
        """Until no summary is being made (tests, shutdown)."""
        while self._task is not None and not self._task.done():
            await asyncio.gather(asyncio.shield(self._task), return_exceptions=True)

    async def _run(self) -> None:
        while self._pending:
            turns = self._fitting(self._pending)
            del self._pending[: len(turns)]
            self._in_flight = turns
            started = time.monotonic()
            try:
                self.text = await self._summarise(turns)
                self.folds += 1
            except Exception as exc:  # back in line for the next fold to try again; the old summary stays
                self.failures += 1
                logger.warning(f"summary: could not summarise {len(turns)} folded turns: {type(exc).__name__}")
                self._pending[:0] = turns
                del self._pending[: max(0, len(self._pending) - self.MAX_PENDING)]
                return
            finally:
                self._in_flight = []
                self.last_seconds = time.monotonic() - started
            if self.on_update is not None and not self._pending:
                await self.on_update()

    def _fitting(self, turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The oldest of ``turns`` that fit one summary request to the summary model's window
        (at least one; the rest wait for the next round)."""
        model = self._model()
        window = self._router.context_window(model)
        if window is None:
            return list(turns)
        room = window - self.max_tokens - 64
        low, high = 1, len(turns)
        while low < high:
            middle = (low + high + 1) // 2
            if self._router.count_tokens(model, self._messages(turns[:middle])) <= room:
                low = middle
            else:
                high = middle - 1
        first = turns[0]
        if low == 1 and self._router.count_tokens(model, self._messages([first])) > room:
            # One turn alone is too long for a summary request: its head and tail go in (a
            # turn that could never fit would block every later summary).
            text, keep = _text(first), len(_text(first))
            while keep > 64:
                keep //= 2
                short = {**first, "content": f"{text[: keep // 2]} … {text[-keep // 2:]}"}
                if self._router.count_tokens(model, self._messages([short])) <= room:
                    return [short]
            return [{**first, "content": text[:64]}]
        return list(turns[:low])

    @staticmethod
    def prompt_prefix(max_tokens: int) -> list[dict[str, str]]:
        """The start every summary request shares (what a summary model's cache can keep)."""
        return [{"role": "system", "content": PROMPT.format(words=int(max_tokens * 0.7))}]

    def _messages(self, turns: list[dict[str, Any]]) -> list[dict[str, str]]:
        transcript = "\n".join(f"{m['role']}: {_text(m)}" for m in turns)
        earlier = f"Earlier memory: {self.text}\n\n" if self.text else ""
        return [*self.prompt_prefix(self.max_tokens),
                {"role": "user", "content": f"{earlier}New turns:\n{transcript}\n\nThe new memory:"}]

    async def _summarise(self, turns: list[dict[str, Any]]) -> str:
        params = {"model": self._model(), "messages": self._messages(turns), "max_tokens": self.max_tokens,
                  "temperature": 0.2, "user": self._user}
        pieces = []
        async for chunk in self._router.stream({k: v for k, v in params.items() if v is not None}):
            for choice in chunk.choices[:1]:
                if choice.delta and choice.delta.content:
                    pieces.append(choice.delta.content)
        text = " ".join("".join(pieces).split())
        if not text:
            raise ValueError("the summary came back empty")
        return text


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content or "")
