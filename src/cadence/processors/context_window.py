"""Keeps every request of a session under its model's window.

The prompt's layout is fixed and prefix-stable: ``[persona | character | memory (pinned
facts, rolling summary) | recent turns | facts and lore the last turn calls for]``. When the recent turns outgrow the window (minus the reply's
``max_tokens``), the oldest block of them leaves the context at once, down to ``fold_to``
of the budget, and is folded into the rolling summary in the background. Between folds
the prefix does not change, so the KV cache of persona, memory and older turns keeps
being reused; a request never fails for want of room while a summary is still being made.

Folding is done between turns when it can be: after a reply, a context past ``HIGH_WATER``
of its budget is folded ahead of need and the new prefix is prefilled in the background
(again when the summary lands), so the next request finds it in the KV cache instead of
paying a cold prefill on the reply's path.

pipecat's ``LLMContextSummarizer`` estimates tokens at four characters each and lets a
request go over the window while its summary is pending; a 2,048-token model needs exact
counts and a hard cap, hence this class (it still hands the folded turns to a summariser).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from loguru import logger

from cadence.memory import RollingSummary
from cadence.memory.cards import Character
from cadence.memory.user_memory import RELEVANT_HEADER, UserMemory

RESERVE_TOKENS = 32  # slack for the template's own tokens (e.g. a default system prompt) around the reply
MAX_UNFITTED_MESSAGES = 400  # a model of unknown window still keeps at most this many messages
HIGH_WATER = 0.85  # between turns, a context past this share of its budget is folded ahead of need


class ContextWindow:
    """Fits a pipecat ``LLMContext`` to the model's window before each request."""

    def __init__(self, router: Any, summary: RollingSummary, *, fold_to: float = 0.4, user: str | None = None,
                 memory: UserMemory | None = None, llm_context: Any = None, named_user: str | None = None):
        self._router = router
        self.summary = summary
        self.memory = memory or UserMemory(summary)
        self.llm_context = llm_context  # the session's pipecat LLMContext
        self._tools_cost: tuple[str, int] = ("", 0)  # (the tools' schemas, their prompt tokens + the template's words)
        self.named_user = named_user  # the user the client named at connect (whose memory persists)
        self._relevant: list[str] = []  # facts the latest user turn calls for (this request only)
        self.restored: list[dict[str, Any]] = []  # the last session's turns this one continues
        self.fold_to = fold_to
        self._user = user
        self.folded_messages = 0
        self.warms = 0  # prefixes prefilled between turns
        self.character: Character | None = None  # a character card: persona, lore, post-history
        self._last: tuple[Any, str, str, int] | None = None  # (context, model, persona, max_tokens) of the last request
        self._block = ""  # the summary block as last counted: what requests carry until the next count
        self._closed = False
        self._tasks: set[asyncio.Task] = set()
        self._turn_saved: asyncio.Future | None = None
        summary.on_update = self._warm_again

    def system_prompt(self, persona: str) -> str:
        """The persona (the character's, with ``persona`` as its original prompt, when a card is
        set), then the memory block (when there is one)."""
        if self.character is not None:
            persona = self.character.persona(persona)
        return "\n\n".join(p for p in (persona, self._block) if p)

    def room(self, model: str, persona: str, max_tokens: int, character: Character | None | bool = True
             ) -> int | None:
        """Tokens left for the conversation itself once the system prompt (``character`` — by
        default this window's — included) and the longest summary are in, or None when the
        model's window is unknown."""
        character = self.character if character is True else character or None
        budget = self.budget(model, max_tokens, character)
        if budget is None:
            return None
        persona = character.persona(persona) if character else persona
        system = self._router.count_tokens(model, [{"role": "system", "content": persona}])
        return budget - system - self.summary.max_tokens - self.memory.options.facts_max_tokens - 24

    async def finish(self) -> None:
        """The session is ending: its memory is saved one last time, then it closes."""
        if self.llm_context is not None and not self._closed:
            # Words only: a tool call (an assistant message without text) would come back as an empty turn.
            await self.memory.save(_plain([m for m in self.llm_context.get_messages()
                                           if _is_turn(m) and not m.get("tool_calls")]))
        self.close()

    def close(self) -> None:
        """The session ended: no more summaries or prefills for it."""
        self._closed = True
        self.summary.cancel()
        self.memory.close()

    async def start(self, *, model: str, persona: str, max_tokens: int, user: str | None = None) -> None:
        """The session started: load its user's memory (continuing the last session's turns
        within the resume window) and prefill the stable prefix before the user speaks."""
        self._last = (self.llm_context, model, persona, max_tokens)
        await self.attach(user or self.named_user)

    async def attach(self, user: str | None) -> None:
        """Give the session's memory to ``user`` (at start, or when the client names them later)."""
        live = self.llm_context.get_messages() if self.llm_context is not None else []
        restored = await self.memory.attach(user, live_messages=sum(1 for m in live if _is_turn(m)))
        if restored and self.llm_context is not None:
            self.llm_context.set_messages([*live, *restored])
            self.restored = restored
        self._block = self.memory.block()
        if self._last is not None and (self.memory.user or restored):
            self._spawn_warm()

    def take_restored(self) -> list[dict[str, Any]]:
        """The last session's turns this one continues (once: the transport shows them)."""
        restored, self.restored = self.restored, []
        return restored

    async def prepare(self, context: Any) -> None:
        """Before a request: the facts the user's latest words call for."""
        last_user = next((m for m in reversed(context.get_messages()) if isinstance(m, dict)
                          and m.get("role") == "user"), None)
        self._relevant = await self.memory.relevant(_plain([last_user])[0]["content"]) if last_user else []

    def shape(self, messages: list[dict[str, Any]], model: str | None = None) -> list[dict[str, Any]]:
        """A request's messages as the model gets them: the system prompt as above; then, after
        the history, the lorebook entries the recent turns call for and the character's
        post-history instructions (last, so the cached prefix before them stays the same)."""
        if messages and messages[0].get("role") == "system" and isinstance(messages[0].get("content"), str):
            messages = [{**messages[0], "content": self.system_prompt(messages[0]["content"])}, *messages[1:]]
        elif system := self.system_prompt(""):
            messages = [{"role": "system", "content": system}, *messages]
        tail = []
        if self._relevant:
            tail.append({"role": "system", "content": RELEVANT_HEADER + "\n" + "\n".join(
                f"- {text}" for text in self._relevant)})
        if self.character is None:
            return [*messages, *tail]
        recent = [str(m.get("content") or "") for m in messages[1:] if m.get("role") in ("user", "assistant")]
        count = (lambda text: self._router.count_tokens(model, [{"role": "system", "content": text}])) if model \
            else (lambda text: len(text) // 3)
        if lore := self.character.lore(recent, count, budget=self._lore_budget(model, self.character)):
            tail.append({"role": "system", "content": "Lore that matters now:\n" + "\n".join(lore)})
        if post := self.character.post_history():
            tail.append({"role": "system", "content": post})
        return [*messages, *tail]

    def _lore_budget(self, model: str | None, character: Character | None) -> int:
        """The card book's budget, at most an eighth of the window (none without a book)."""
        if character is None or character.card.character_book is None:
            return 0
        window = self._router.context_window(model) if model else None
        return min(character.lore_budget(), window // 8) if window else character.lore_budget()

    def _tail_tokens(self, model: str, character: Character | None) -> int:
        """Room kept for what ``shape`` adds after the history."""
        relevant = self.memory.options.relevant_facts * 56 + 16 if self.memory.options.relevant_facts else 0
        if character is None:
            return relevant
        post = character.post_history()
        post_tokens = self._router.count_tokens(model, [{"role": "system", "content": post}]) if post else 0
        return self._lore_budget(model, character) + post_tokens + 16 + relevant

    def budget(self, model: str, max_tokens: int, character: Character | None | bool = True) -> int | None:
        """Prompt tokens system prompt and history may use in a request to ``model`` (the rest is
        the reply's and the lore's), or None when its window is unknown."""
        window = self._router.context_window(model)
        character = self.character if character is True else character or None
        if window is None:
            return None
        return window - max_tokens - RESERVE_TOKENS - self._tail_tokens(model, character) - self._tools_tokens(model)

    def _tools_tokens(self, model: str) -> int:
        """What the tools offered take in the prompt (a chat template lists their schemas)."""
        tools = getattr(self.llm_context, "tools", None)
        schemas = getattr(tools, "standard_tools", None) or []
        if not schemas:
            return 0
        text = json.dumps([s.to_default_dict() for s in schemas if hasattr(s, "to_default_dict")])
        if self._tools_cost[0] != text:  # counted once per set of tools
            self._tools_cost = (text, self._router.count_tokens(model, [{"role": "system", "content": text}]) + 96)
        return self._tools_cost[1]

    def fit(self, context: Any, *, model: str, persona: str, max_tokens: int) -> int | None:
        """Fold the oldest turns out of ``context`` if the request would not fit; returns the
        prompt tokens the request will take (None when the window is unknown)."""
        self._last = (context, model, persona, max_tokens)
        self._block = self.memory.block()
        return self._fold(context, model, persona, max_tokens, threshold=1.0)

    def fit_provisional(self, provisional: Any, *, model: str, persona: str, max_tokens: int) -> int | None:
        """``fit`` for a reply begun before its turn is decided (pipecat's speculative inference
        runs on a copy of the session's context plus the guessed user message). A fold must
        happen on the session's own context, not on a copy that is thrown away: the guess is
        appended to it for the fit and taken off again, and the copy rebuilt from the result."""
        real = self.llm_context
        guess = provisional.get_messages()[len(real.get_messages()):] if real is not None else []
        if real is None or provisional is real or len(guess) != 1:
            return self.fit(provisional, model=model, persona=persona, max_tokens=max_tokens)
        real.set_messages([*real.get_messages(), *guess])
        try:
            return self.fit(real, model=model, persona=persona, max_tokens=max_tokens)
        finally:  # no await in between: nothing else sees the guess in the session's context
            messages = list(real.get_messages())  # set_messages changes the list in place
            real.set_messages(messages[:-1])
            provisional.set_messages(list(messages))

    async def between_turns(self) -> None:
        """After a reply: fold ahead of need and prefill the new prefix in the background."""
        if self._last is None:
            return
        context, model, persona, max_tokens = self._last
        messages = context.get_messages()
        # Made before the first await: a transport's handler of the same event, run after
        # this one, waits on it (turn_saved) before it reports the turn done.
        saved = self._turn_saved = asyncio.get_running_loop().create_future()
        try:
            await self.memory.end_of_turn(_last_user_text(messages), _plain([m for m in messages if _is_turn(m)]))
        finally:
            saved.set_result(None)
        before = self.folded_messages
        self._fold(context, model, persona, max_tokens, threshold=HIGH_WATER)
        if self.folded_messages != before:
            await self._warm()

    async def turn_saved(self, timeout: float = 5.0) -> None:
        """Until the memory of the turn that just ended is written (durable), at most ``timeout``."""
        if self._turn_saved is not None and not self._turn_saved.done():
            await asyncio.wait([self._turn_saved], timeout=timeout)

    async def _warm_again(self) -> None:
        """A new summary landed: the next request carries it (and it is saved); prefill that prefix now."""
        self._block = self.memory.block()
        if self._last is not None:
            context = self._last[0]
            await self.memory.save(_plain([m for m in context.get_messages() if _is_turn(m)]))
            await self._warm()

    def _spawn_warm(self) -> None:
        task = asyncio.get_running_loop().create_task(self._warm())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _warm(self) -> None:
        if self._closed:
            return
        context, model, persona, _ = self._last
        messages = [{"role": "system", "content": self.system_prompt(persona)}, *_plain(context.get_messages())]
        try:
            await asyncio.to_thread(self._router.warm, model, messages, user=self._user)
            self.warms += 1
        except Exception as exc:  # a cold prefill later is slower, not wrong
            logger.warning(f"context window: could not prefill the new prefix: {type(exc).__name__}")

    def _fold(self, context: Any, model: str, persona: str, max_tokens: int, *, threshold: float) -> int | None:
        budget = self.budget(model, max_tokens)
        messages = context.get_messages()
        if budget is None:  # unknown window: still bounded, by message count
            if len(messages) > MAX_UNFITTED_MESSAGES:
                self._cut(context, messages, len(messages) - MAX_UNFITTED_MESSAGES * 3 // 4)
            return None
        system = [{"role": "system", "content": self.system_prompt(persona)}]

        def tokens(start: int) -> int:
            return self._router.count_tokens(model, [*system, *_plain(messages[start:])])

        used = tokens(0)
        if used <= budget * threshold or len(messages) < 2:
            return used  # fits, or one message alone is too long: the backend refuses it, loudly
        # The fewest oldest messages whose removal brings the prompt to fold_to of the
        # budget, but never the last message (the turn being answered).
        target = int(budget * self.fold_to)
        low, high = 1, max(1, len(messages) - 1)
        while low < high:
            middle = (low + high) // 2
            if tokens(middle) <= target:
                high = middle
            else:
                low = middle + 1
        kept = self._cut(context, messages, min(_turn_start(messages, low), len(messages) - 1))
        system = [{"role": "system", "content": self.system_prompt(persona)}]  # the fold re-pinned the facts
        return tokens_of(self._router, model, system, kept)

    def _cut(self, context: Any, messages: list[Any], cut: int) -> list[Any]:
        """Fold ``messages[:cut]`` into the summary; system messages among them stay (moved
        before the kept turns), since the summary is about the conversation only."""
        folded = messages[:cut]
        staying = [m for m in folded if isinstance(m, dict) and m.get("role") in ("system", "developer")]
        kept = [*staying, *messages[cut:]]
        context.set_messages(kept)
        self.folded_messages += len(folded) - len(staying)
        self.summary.fold([m for m in folded if not any(m is s for s in staying)])
        self.memory.pin()  # a fold is a prefix boundary: facts learnt since the last one enter the block
        self._block = self.memory.block()
        return kept


def tokens_of(router: Any, model: str, system: list[dict[str, Any]], messages: list[Any]) -> int:
    return router.count_tokens(model, [*system, *_plain(messages)])


def _is_turn(message: Any) -> bool:
    return isinstance(message, dict) and message.get("role") in ("user", "assistant")


def _last_user_text(messages: list[Any]) -> str:
    """What the user said in the turn just answered (every user message since the previous reply)."""
    said: list[str] = []
    index = len(messages) - 1
    while index >= 0 and _is_turn(messages[index]) and messages[index].get("role") == "assistant":
        index -= 1
    while index >= 0 and not (_is_turn(messages[index]) and messages[index].get("role") == "assistant"):
        if _is_turn(messages[index]):
            said.insert(0, _plain([messages[index]])[0]["content"])
        index -= 1
    return "\n".join(said)


def _turn_start(messages: list[Any], index: int) -> int:
    """``index`` moved on to the next user message, so the kept turns start with the user
    (as far as the last message allows)."""
    last = len(messages) - 1
    while index < last and not (isinstance(messages[index], dict) and messages[index].get("role") == "user"):
        index += 1
    return index


def _plain(messages: list[Any]) -> list[dict[str, Any]]:
    """Messages as role + text, the shape the router counts (tool and media parts as text)."""
    out = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, list):
            content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        out.append({"role": message.get("role", "user"), "content": str(content or "")})
    return out
