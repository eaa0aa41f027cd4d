"""Tool calls through the router: merged from stream deltas, and read out of a small model's text.

A backend streams a call as OpenAI deltas (an ``index``, then the ``id`` and name, then the
arguments in pieces). The router holds them per attempt (``ToolCallMerger``) and hands them
on whole when the attempt finishes, so a replica that dies in the middle of a call never
leaves half a call with the client: the next attempt makes its own.

An embedded model whose chat template has a tools branch (Qwen2.5) writes its call as text:
``<tool_call>`` is a special token dropped on detokenisation, so what arrives is bare JSON,
sometimes with doubled braces (``{{…}}``), a code fence, or prose around it. ``TextToolCalls``
passes prose through as it streams, holds back anything from the first ``{`` or fence (a
spoken reply almost never has one), and at the end reads the held text leniently: a JSON
object naming a declared tool (or any ``{"name", "arguments"}`` object: pipecat tells the
model it has no such tool) is a call; call-like text that cannot be read (cut short by
``max_tokens``) is dropped and logged, never spoken; anything else goes on as the text it was.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from loguru import logger


@dataclass
class ToolCall:
    """One complete call: the id the result will answer, the function and its JSON arguments."""

    id: str
    name: str
    arguments: str

    def wire(self, index: int) -> dict[str, Any]:
        """As OpenAI's ``tool_calls`` entry (with the stream's ``index``)."""
        return {"index": index, "id": self.id, "type": "function",
                "function": {"name": self.name, "arguments": self.arguments}}


def new_call_id() -> str:
    """An id in OpenAI's shape (``call_…``)."""
    return f"call_{uuid.uuid4().hex[:24]}"


@dataclass
class ToolCallMerger:
    """Stream deltas (``choice.delta.tool_calls``) merged by index into whole calls."""

    _calls: dict[int, dict[str, str]] = field(default_factory=dict)

    def feed(self, deltas: list[Any]) -> None:
        """Add one chunk's tool-call deltas (OpenAI SDK objects)."""
        for delta in deltas:
            call = self._calls.setdefault(delta.index or 0, {"id": "", "name": "", "arguments": ""})
            if delta.id:
                call["id"] = delta.id
            if delta.function is not None:
                call["name"] += delta.function.name or ""
                call["arguments"] += delta.function.arguments or ""

    def calls(self) -> list[ToolCall]:
        """The calls so far, in index order (an id made up where the backend sent none)."""
        return [ToolCall(c["id"] or new_call_id(), c["name"], c["arguments"] or "{}")
                for _, c in sorted(self._calls.items()) if c["name"]]


_FENCE = re.compile(r"```(?:json|tool_call)?")
_CALL_LIKE = re.compile(r"""^\s*(?:<tool_call>|```|\{)[\s\S]*["']name["']""")
_OPENERS = ("{", "```", "<tool_call>")


class TextToolCalls:
    """Reads calls to ``tools`` (their names) out of streamed text; see the module docstring."""

    def __init__(self, tools: list[str]):
        self._tools = set(tools)
        self._held = ""  # from the first opener on
        self._tail = ""  # a possible opener's start at the end of a piece ("<tool" …)

    @property
    def holding(self) -> bool:
        """Whether text that may be a call is held back."""
        return bool(self._held)

    def feed(self, text: str) -> str:
        """The part of ``text`` that is surely prose (the rest is held)."""
        if self._held:
            self._held += text
            return ""
        text = self._tail + text
        self._tail = ""
        starts = [i for i in (text.find(o) for o in _OPENERS) if i >= 0]
        if starts:
            cut = min(starts)
            self._held = text[cut:]
            return text[:cut]
        for size in range(min(len(text), len("<tool_call>") - 1), 0, -1):
            if any(o.startswith(text[-size:]) for o in _OPENERS):
                self._tail = text[-size:]
                return text[:-size]
        return text

    def finish(self) -> tuple[str, list[ToolCall]]:
        """At the reply's end: (text still to deliver, the calls found in the held text)."""
        held, self._held = self._held + self._tail, ""
        self._tail = ""
        if not held:
            return "", []
        calls, rest = parse_calls(held, self._tools)
        if not calls:
            if _CALL_LIKE.search(held):  # a call cut short (max_tokens) or garbled: never spoken as words
                logger.warning("tool calls: a call the model wrote could not be read ({} characters); dropped",
                               len(held))
                return "", []
            return held, []
        if rest.strip():
            logger.debug("tool calls: prose after a call was dropped ({} characters)", len(rest))
        return "", calls


def parse_calls(text: str, tools: set[str]) -> tuple[list[ToolCall], str]:
    """Calls to ``tools`` in ``text`` (bare JSON objects, doubled braces, fences, ``<tool_call>``
    tags) and the text left around them."""
    cleaned = _FENCE.sub(" ", text.replace("<tool_call>", " ").replace("</tool_call>", " "))
    decoder = json.JSONDecoder()
    calls: list[ToolCall] = []
    rest: list[str] = []
    i = 0
    while (start := cleaned.find("{", i)) >= 0:
        rest.append(cleaned[i:start])
        value, end = _decode_at(decoder, cleaned, start)
        if value is None:
            rest.append(cleaned[start:start + 1])
            i = start + 1
            continue
        call = _as_call(value, tools)
        if call is None:
            rest.append(cleaned[start:end])
        else:
            calls.append(call)
        i = end
    rest.append(cleaned[i:])
    return calls, "".join(rest)


def _decode_at(decoder: json.JSONDecoder, text: str, start: int) -> tuple[Any, int]:
    try:
        return decoder.raw_decode(text, start)
    except json.JSONDecodeError:
        pass
    if text.startswith("{{", start):  # doubled braces, as a template-minded model writes them
        end = text.find("}}", start)
        while end >= 0:
            candidate = text[start + 1:end + 1]
            try:
                return json.loads(_undouble(candidate)), end + 2
            except json.JSONDecodeError:
                end = text.find("}}", end + 1)
    return None, start


def _undouble(text: str) -> str:
    return text.replace("{{", "{").replace("}}", "}")


def _as_call(value: Any, tools: set[str]) -> ToolCall | None:
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("function"), dict):  # {"type": "function", "function": {...}}
        value = value["function"]
    name = value.get("name")
    shaped = isinstance(name, str) and isinstance(value.get("arguments", value.get("parameters")), (dict, str))
    if name not in tools and not shaped:
        return None  # an undeclared name in call shape is still a call: the model is told it has no such tool
    arguments = value.get("arguments", value.get("parameters", {}))
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            return None
    if not isinstance(arguments, dict):
        return None
    return ToolCall(new_call_id(), name, json.dumps(arguments, ensure_ascii=False))


def tool_names(tools: Any) -> list[str]:
    """The function names of an OpenAI ``tools`` list."""
    names = []
    for tool in tools or []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            names.append(function["name"])
    return names
