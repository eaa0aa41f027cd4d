"""Responses beside the conversation: ``response.create`` with ``conversation: "none"``
and/or ``input`` (clients use them for classifications, summaries, titles).

Such a response is made straight by the router, not by the session's pipeline, so it never
enters the conversation's context, is never spoken, and runs while a spoken reply is in
progress. Its context is the ``input`` items when given (``item_reference`` points at a
conversation item; ``[]`` is an empty context), else a copy of the conversation as the LLM
sees it. Its events are OpenAI's: ``response.created``, the output item and text deltas,
``response.done`` (with ``conversation_id: null`` for ``conversation: "none"``). With
``conversation: "auto"`` and ``input`` the reply is also added to the conversation.

They make text only: the TTS belongs to the pipeline. ``output_modalities`` defaults to
``["text"]`` here; asking for audio is an error naming the field.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from loguru import logger

from cadence.transports.realtime.protocol import ProtocolError, new_id
from cadence.transports.realtime.responses import Response, ResponseOptions

MAX_RUNNING = 4  # out-of-band responses one session may have in progress at once
MAX_INPUT_ITEMS = 256
_TEXT_KEYS = ("text", "transcript")


def wanted(options: dict[str, Any]) -> bool:
    """Whether a ``response.create``'s ``response`` asks for an out-of-band response."""
    return options.get("conversation") == "none" or options.get("input") is not None


class OutOfBandResponses:
    """The out-of-band responses of one session, each a task of its own (bounded by ``MAX_RUNNING``)."""

    def __init__(self, router: Any, emit: Callable[[dict[str, Any]], None], conversation: Any,
                 user_id: str | None):
        self._router = router
        self._emit = emit
        self._conversation = conversation
        self._user = user_id
        self._running: dict[str, asyncio.Task] = {}

    def start(self, options: dict[str, Any], *, model: str, instructions: str, max_tokens: Any) -> None:
        """Check the request now (ProtocolError naming the field), then make the reply in the background."""
        conversation = options.get("conversation", "auto")
        if conversation not in ("auto", "none"):
            raise ProtocolError("invalid_value", f"response.conversation must be 'auto' or 'none', got {conversation!r}",
                                param="response.conversation")
        modalities = options.get("output_modalities") or ["text"]
        if modalities != ["text"]:
            raise ProtocolError("unsupported", "a response outside the conversation or with its own input is made as"
                                " text only (the voice belongs to the conversation's replies); set"
                                " output_modalities to ['text']", param="response.output_modalities")
        provider = options.get("providerData") if isinstance(options.get("providerData"), dict) else {}
        choice = options.get("tool_choice")
        for param, value in (("response.audio", options.get("audio")), ("response.providerData.tts", provider.get("tts")),
                             ("response.tools", options.get("tools")),
                             ("response.tool_choice", choice not in (None, "none", "auto") and choice)):
            if value:  # a voice for a reply never spoken, tools for one the router makes alone: refused
                raise ProtocolError("unsupported", f"{param} does not apply: a response outside the conversation or"
                                    " with its own input is text only, without tools", param=param)
        if len(self._running) >= MAX_RUNNING:
            raise ProtocolError("too_many_responses", f"{MAX_RUNNING} out-of-band responses are in progress already;"
                                " wait for one to finish", param="response")
        items = options.get("input")
        context = self._input_messages(items) if items is not None else self._conversation_messages()
        messages = [{"role": "system", "content": options.get("instructions") or instructions}, *context]
        if len(messages) == 1:  # nothing to respond to: an empty context still asks for a reply
            messages.append({"role": "user", "content": ""})
        limit = options.get("max_output_tokens")
        params = {"model": model, "messages": messages, "stream": True, "user": self._user,
                  "max_tokens": limit if isinstance(limit, int) else (max_tokens if isinstance(max_tokens, int) else None)}
        chosen = ResponseOptions(["text"], {}, options.get("metadata"))
        response = Response(new_id("resp"), chosen)
        response.conversation_id = None if conversation == "none" else "auto"
        task = asyncio.get_running_loop().create_task(self._run(response, params))
        self._running[response.id] = task
        task.add_done_callback(lambda _: self._running.pop(response.id, None))

    def cancel(self, response_id: str | None) -> bool:
        """Cancel one out-of-band response (True) or, with no id, none of them (False)."""
        task = self._running.get(response_id) if response_id else None
        if task is None or task.done():
            return False
        task.cancel()
        return True

    async def close(self) -> None:
        """Cancel what is in progress (the session is over)."""
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- the context ----------------------------------------------------------------------

    def _conversation_messages(self) -> list[dict[str, Any]]:
        return [{"role": m["role"], "content": m["content"]} for m in self._conversation.context_messages()
                if isinstance(m.get("content"), str)]

    def _input_messages(self, items: Any) -> list[dict[str, Any]]:
        if not isinstance(items, list) or len(items) > MAX_INPUT_ITEMS:
            raise ProtocolError("invalid_value", f"response.input must be a list of at most {MAX_INPUT_ITEMS} items",
                                param="response.input")
        messages = []
        for index, item in enumerate(items):
            where = f"response.input.{index}"
            if not isinstance(item, dict):
                raise ProtocolError("invalid_value", f"{where} must be an item object", param=where)
            if item.get("type") == "item_reference":
                if not isinstance(item.get("id"), str):
                    raise ProtocolError("invalid_value", f"{where}.id must be the id of a conversation item",
                                        param=f"{where}.id")
                try:
                    item = self._conversation.get(item.get("id"))
                except ProtocolError as exc:
                    raise ProtocolError(exc.code, f"{where}: {exc}", param=f"{where}.id") from exc
            elif item.get("type", "message") != "message":
                raise ProtocolError("unsupported", f"{where}.type must be 'message' or 'item_reference', got"
                                    f" {item.get('type')!r}", param=f"{where}.type")
            role = item.get("role")
            if role not in ("user", "assistant", "system"):
                raise ProtocolError("invalid_value", f"{where}.role must be user, assistant or system, got {role!r}",
                                    param=f"{where}.role")
            text = " ".join(str(part.get(key)) for part in item.get("content") or [] if isinstance(part, dict)
                            for key in _TEXT_KEYS if part.get(key)).strip()
            messages.append({"role": role, "content": text})
        return messages

    # -- the reply ------------------------------------------------------------------------

    async def _run(self, response: Response, params: dict[str, Any]) -> None:
        output = response.add_message(new_id("item"))
        in_conversation = response.conversation_id is not None
        previous = self._conversation.add(output.item(), output) if in_conversation else None
        self._emit({"type": "response.created", "response": response.resource()})
        for event in output.added_events(previous):
            if in_conversation or not event["type"].startswith("conversation."):
                self._emit(event)
        status, reason, error = "completed", None, None
        try:
            async for chunk in self._router.stream(params):
                for choice in chunk.choices:
                    if choice.delta and choice.delta.content:
                        self._emit(output.text_delta(choice.delta.content))
                    if choice.finish_reason == "length":
                        status, reason = "incomplete", "max_output_tokens"
                if chunk.usage:
                    response.usage = chunk.usage
        except asyncio.CancelledError:
            status, reason = "cancelled", "client_cancelled"
        except Exception as exc:  # the router's RouterError, or a backend's own failure
            logger.warning(f"realtime: an out-of-band response failed: {exc}")
            status, error = "failed", {"type": "server_error", "code": "llm_failed", "message": str(exc)}
            self._emit({"type": "error", "error": {**error, "param": None, "event_id": None}})  # as in-band replies
        response.finish(status, reason, error)
        if in_conversation:
            self._conversation.add(output.item(), output)
        for event in output.done_events(previous):
            if in_conversation or not event["type"].startswith("conversation."):
                self._emit(event)
        self._emit({"type": "response.done", "response": response.resource()})  # before any await: a late
        if in_conversation:  # cancel cannot take it away
            await self._conversation.append_message(output.id, "assistant", output.text)
