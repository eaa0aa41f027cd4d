"""Tools on an embedded llama.cpp model: which tools a request offers, messages shaped for
chat templates, and the guards against a small model's spurious calls (see ``stream``)."""

from __future__ import annotations

import json
import re
from typing import Any


def offered_tools(params: dict[str, Any]) -> list[dict[str, Any]]:
    """The tools a request lets the model call: none with ``tool_choice: none``, only the named
    one with ``tool_choice: {type: function, function: {name}}``."""
    tools = [t for t in params.get("tools") or [] if isinstance(t, dict) and t.get("type", "function") == "function"]
    choice = params.get("tool_choice")
    if choice == "none":
        return []
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        return [t for t in tools if t.get("function", {}).get("name") == choice["function"].get("name")]
    return tools


_WORD = re.compile(r"[^\W\d_]{3,}")


def spurious(calls: list[Any], tools: list[dict[str, Any]], messages: list[dict[str, Any]]) -> bool:
    """Whether every call is a small model's guess: it repeats one answered since the user
    last spoke; or it guesses its required free-text arguments (no word of them was said by
    the user or a tool); or, having none, neither its name nor its description shares a word
    with the user's last message (``current_time`` for "how was your day?")."""
    answered, said = _answered_this_turn(messages), _said_words(messages)
    last = next((m for m in reversed(messages) if m.get("role") == "user"), None)
    asked = _said_words([last]) if last else set()
    functions = {t.get("function", {}).get("name"): t.get("function", {}) for t in tools}

    def guess(call: Any) -> bool:
        if (call.function.name, _canonical(call.function.arguments)) in answered:
            return True
        function = functions.get(call.function.name, {})
        free = _free_text(call.function.arguments, function.get("parameters") or {})
        if free:
            return not any({w.lower() for w in _WORD.findall(v)} & said for v in free)
        topic = {w.lower() for w in _WORD.findall(f"{call.function.name.replace('_', ' ')} {function.get('description', '')}")}
        return bool(topic) and not topic & asked

    return all(guess(c) for c in calls)


def _said_words(messages: list[dict[str, Any]]) -> set[str]:
    words: set[str] = set()
    for message in messages:
        if message.get("role") in ("user", "tool"):
            content = message.get("content")
            text = content if isinstance(content, str) else " ".join(
                p.get("text", "") for p in content or [] if isinstance(p, dict))
            words |= {w.lower() for w in _WORD.findall(text)}
    return words


def _free_text(arguments: str | None, parameters: dict[str, Any]) -> list[str]:
    """A call's required free-text arguments (strings without an enum) that hold words."""
    try:
        values = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        return []
    if not isinstance(values, dict):
        return []
    properties = parameters.get("properties") or {}
    free = [values.get(name) for name in parameters.get("required") or []
            if isinstance(values.get(name), str) and (properties.get(name) or {}).get("type", "string") == "string"
            and "enum" not in (properties.get(name) or {})]
    return [v for v in free if _WORD.findall(v)]


def _canonical(arguments: str | None) -> str:
    try:
        return json.dumps(json.loads(arguments or "{}"), sort_keys=True)
    except json.JSONDecodeError:
        return arguments or ""


def _answered_this_turn(messages: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(name, arguments) of the calls since the user last spoke that a tool message answers."""
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    turn = messages[last_user + 1:]
    answered_ids = {m.get("tool_call_id") for m in turn if m.get("role") == "tool"}
    return {(c.get("function", {}).get("name"), _canonical(c.get("function", {}).get("arguments")))
            for m in turn for c in m.get("tool_calls") or [] if c.get("id") in answered_ids}


def template_message(message: dict[str, Any]) -> dict[str, Any]:
    calls = message.get("tool_calls")
    if not calls:
        return message
    shaped = []
    for call in calls:
        function = dict(call.get("function") or {})
        if isinstance(function.get("arguments"), str):
            try:
                function["arguments"] = json.loads(function["arguments"])
            except json.JSONDecodeError:
                pass  # left as the model wrote it
        shaped.append({**call, "function": function, **function})  # some templates read call.name directly
    return {**message, "tool_calls": shaped}
