"""The client's conversation items and the model context messages they became.

Each item is mapped explicitly to the context message objects it produced: client-created
items to the message Cadence appends; spoken user turns and assistant replies to the
messages the context aggregators add, claimed when their events report them (every
message of that role no item has claimed yet). Edits (delete, truncate) go to the context as pipecat frames, in order with
everything else the pipeline does, and pick their message by identity, never by text.
Items and context may drift apart (an old item evicted, a message summarised away
later); an item whose message is gone edits nothing in the context.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from pipecat.frames.frames import Frame, LLMMessagesAppendFrame, LLMMessagesTransformFrame

from cadence.transports.realtime.protocol import ProtocolError

# Items a session keeps for retrieve/delete/truncate; older ones are forgotten (their
# context messages stay, as far as the context stage keeps them).
MAX_ITEMS = 1000
MAX_AWAITING = 64  # replies whose context message has not arrived yet (responses in flight)
_KEEP, _DELETE = object(), object()


class Conversation:
    """Items in order (bounded by ``MAX_ITEMS``), each with the context message it became."""

    def __init__(self, llm_context: Any, queue_frame: Callable[[Frame], Awaitable[None]]):
        self._context = llm_context
        self._queue = queue_frame
        self.items: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._messages: dict[str, list[dict[str, Any]]] = {}  # item id → its context messages
        self._outputs: dict[str, Any] = {}  # assistant item id → its response output
        # Every message some item claimed (evicted items' too, so nobody claims them
        # again); strong references keep ids unique, pruned to what the context holds.
        self._claimed: dict[int, dict[str, Any]] = {}
        # Items whose message the assistant aggregator adds only when the reply has been
        # played (it sits after the output): an edit made before then waits here.
        self._awaiting: dict[str, Any] = {}
        self._folded: OrderedDict[str, None] = OrderedDict()  # items that left for memory (bounded)
        self._calls_seen: set[Any] = set()  # call ids of items whose call has been in the context

    # -- items ---------------------------------------------------------------------------

    def add(self, item: dict[str, Any], output: Any = None) -> str | None:
        """Put ``item`` at the end (or replace it in place); returns the previous item's id.

        ``output`` is the response output an assistant item came from (for truncation)."""
        if output is not None:
            self._outputs[item["id"]] = output
        if item["id"] in self.items:
            self.items[item["id"]] = item
            return self.previous_of(item["id"])
        previous = self.last_id()
        self.items[item["id"]] = item
        while len(self.items) > MAX_ITEMS:
            old, _ = self.items.popitem(last=False)
            self._messages.pop(old, None)
            self._outputs.pop(old, None)
        return previous

    def get(self, item_id: str) -> dict[str, Any]:
        """The item, or ProtocolError ``item_not_found`` naming ``item_id``."""
        if item_id in self._folded:
            raise ProtocolError("item_not_found", f"item {item_id!r} was folded into the session's memory (the"
                                " rolling summary) and left the live conversation", param="item_id")
        if item_id not in self.items:
            raise ProtocolError("item_not_found", f"no item {item_id!r} in this conversation", param="item_id")
        return self.items[item_id]

    def output_of(self, item_id: str) -> Any:
        return self._outputs.get(item_id)

    def last_id(self) -> str | None:
        return next(reversed(self.items), None)

    def previous_of(self, item_id: str) -> str | None:
        ids = list(self.items)
        index = ids.index(item_id) if item_id in ids else len(ids)
        return ids[index - 1] if index > 0 else None

    def prune(self) -> list[str]:
        """Items whose context messages have all been folded into memory leave the live
        conversation (so it stays bounded by what the model still sees); their ids."""
        messages_now = self._context.get_messages()
        present = {id(m) for m in messages_now}
        gone = [item_id for item_id, messages in self._messages.items()
                if messages and item_id not in self._awaiting and not any(id(m) in present for m in messages)]
        calls = {c.get("id") for m in messages_now if isinstance(m, dict) for c in m.get("tool_calls") or []}
        call_items = {item_id: item.get("call_id") for item_id, item in self.items.items()
                      if item.get("type") in ("function_call", "function_call_output")}
        self._calls_seen &= set(call_items.values())  # bounded by the items
        self._calls_seen |= calls & set(call_items.values())
        # A call leaves with its context messages (once they were there: they arrive after its item).
        gone += [item_id for item_id, call_id in call_items.items() if call_id in self._calls_seen - calls]
        for item_id in gone:
            self.items.pop(item_id, None)
            self._messages.pop(item_id, None)
            self._outputs.pop(item_id, None)
            self._folded[item_id] = None
        while len(self._folded) > MAX_ITEMS:
            self._folded.popitem(last=False)
        return gone

    # -- the context ---------------------------------------------------------------------

    async def append_message(self, item_id: str, role: str, text: str) -> None:
        """Append a client-made message for ``item_id`` to the context."""
        message = {"role": role, "content": text}
        self._claim(item_id, [message])
        await self._queue(LLMMessagesAppendFrame(messages=[message], run_llm=False))

    def adopt(self, messages: list[dict[str, Any]], new_id: Callable[[], str]) -> list[dict[str, Any]]:
        """Items for context messages that are already there (a resumed session's turns); the
        events that announce them, in order."""
        added = []
        for message in messages:
            role = message.get("role")
            part = "input_text" if role == "user" else "output_text"
            item = {"id": new_id(), "type": "message", "object": "realtime.item", "role": role,
                    "status": "completed", "content": [{"type": part, "text": str(message.get("content") or "")}]}
            previous = self.add(item)
            self._claim(item["id"], [message])
            added += [{"type": f"conversation.item.{kind}", "previous_item_id": previous, "item": item}
                      for kind in ("added", "done")]
        return added

    def expect(self, item_id: str) -> None:
        """``item_id``'s context message will be added later (a reply still playing)."""
        self._awaiting[item_id] = _KEEP
        while len(self._awaiting) > MAX_AWAITING:
            self._awaiting.pop(next(iter(self._awaiting)))

    async def claim_new(self, item_id: str, role: str) -> int:
        """Map ``item_id`` to every context message of ``role`` that no item has claimed (what
        the aggregator added for it), then apply an edit made while it was awaited; returns
        how many messages it got."""
        new = [m for m in self._context.get_messages()  # a reply's function calls are items of their own
               if isinstance(m, dict) and m.get("role") == role and not m.get("tool_calls")
               and id(m) not in self._claimed]
        if new:
            self._claim(item_id, [*self._messages.get(item_id, []), *new])
        edit = self._awaiting.pop(item_id, _KEEP)
        if edit is _DELETE:
            await self._remove(self._messages.pop(item_id, []))
        elif isinstance(edit, str):
            await self.replace_text(item_id, edit)
        return len(new)

    def context_messages(self) -> list[dict[str, Any]]:
        """The conversation as the LLM sees it now: its user and assistant messages, copied."""
        return [dict(m) for m in self._context.get_messages()
                if isinstance(m, dict) and m.get("role") in ("user", "assistant") and not m.get("tool_calls")]

    async def set_tool_result(self, call_id: str, output: str) -> None:
        """Make the context's result of the call ``call_id`` say ``output`` (a call no longer
        waiting, e.g. cancelled by a barge-in); appended after the call when it has none."""
        def transform(messages: list[Any]) -> list[Any]:
            out, placed = [], False
            for m in messages:
                if isinstance(m, dict) and m.get("role") == "tool" and m.get("tool_call_id") == call_id:
                    m, placed = {**m, "content": output}, True
                out.append(m)
                calls = m.get("tool_calls") if isinstance(m, dict) else None
                if calls and any(c.get("id") == call_id for c in calls) and not any(
                        isinstance(n, dict) and n.get("tool_call_id") == call_id for n in messages):
                    out.append({"role": "tool", "tool_call_id": call_id, "content": output})
                    placed = True
            return out if placed else messages

        await self._queue(LLMMessagesTransformFrame(transform=transform))

    def messages_of(self, item_id: str) -> list[dict[str, Any]]:
        return list(self._messages.get(item_id, []))

    def forget(self, item_id: str) -> None:
        """Drop an item the client never saw (a reply dropped before it was real)."""
        self.items.pop(item_id, None)
        self._outputs.pop(item_id, None)
        self._awaiting.pop(item_id, None)

    async def delete(self, item_id: str) -> None:
        """Forget the item and remove its messages from the context (a function call: the call
        and its result; a call's output alone: its result says it was deleted)."""
        item = self.get(item_id)
        self._outputs.pop(item_id, None)
        del self.items[item_id]
        if item.get("type") in ("function_call", "function_call_output"):
            await self._queue(LLMMessagesTransformFrame(transform=_without_call(
                item.get("call_id"), whole=item["type"] == "function_call")))
            return
        if item_id in self._awaiting:
            self._awaiting[item_id] = _DELETE
        await self._remove(self._messages.pop(item_id, []))

    async def _remove(self, gone: list[dict[str, Any]]) -> None:
        if gone:
            await self._queue(LLMMessagesTransformFrame(
                transform=lambda messages: [m for m in messages if not any(m is g for g in gone)]))

    async def replace_text(self, item_id: str, text: str) -> None:
        """Make the item's context say ``text`` (what the listener heard), in one message."""
        old = self._messages.get(item_id)
        if not old:
            if item_id in self._awaiting:
                self._awaiting[item_id] = text
            return
        new = {**old[0], "content": text}
        self._claim(item_id, [new])

        def transform(messages: list[Any]) -> list[Any]:
            out = []
            for m in messages:
                if m is old[0]:
                    out.append(new)
                elif not any(m is o for o in old[1:]):
                    out.append(m)
            return out

        await self._queue(LLMMessagesTransformFrame(transform=transform))

    def _claim(self, item_id: str, messages: list[dict[str, Any]]) -> None:
        self._messages[item_id] = messages
        for message in messages:
            self._claimed[id(message)] = message
        if len(self._claimed) > 4 * MAX_ITEMS:
            present = {id(m) for m in self._context.get_messages()}
            present |= {id(m) for ms in self._messages.values() for m in ms}
            self._claimed = {key: m for key, m in self._claimed.items() if key in present}


def _without_call(call_id: Any, whole: bool) -> Callable[[list[Any]], list[Any]]:
    """A context transform that removes the call ``call_id`` and its result (``whole``), or
    only empties the result; messages left with no call are dropped."""
    def transform(messages: list[Any]) -> list[Any]:
        out = []
        for m in messages:
            if not isinstance(m, dict):
                out.append(m)
            elif m.get("role") == "tool" and m.get("tool_call_id") == call_id:
                if not whole:
                    out.append({**m, "content": "(the client deleted this output)"})
            elif whole and any(c.get("id") == call_id for c in m.get("tool_calls") or []):
                calls = [c for c in m["tool_calls"] if c.get("id") != call_id]
                if calls or m.get("content"):
                    out.append({**m, "tool_calls": calls} if calls else {k: v for k, v in m.items() if k != "tool_calls"})
            else:
                out.append(m)
        return out
    return transform
