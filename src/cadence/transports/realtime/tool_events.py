"""Function calls on the Realtime wire: the model's calls as ``function_call`` items of its
response, and the client's ``function_call_output`` items back into the conversation.

A part of ``RealtimeSession`` (a mixin), in the shape of OpenAI's Realtime API: a call is an
output item of the response that made it, announced whole (``response.output_item.added``,
``response.function_call_arguments.delta`` / ``.done``, ``response.output_item.done``) and
listed in ``response.done``. A client-run tool's result is then the client's
``function_call_output`` item; the model answers it at the client's ``response.create``
(nothing runs before). Server-run tools (``tools:`` in the YAML) also show their result as
a ``function_call_output`` item, and the model answers at once, in a response of its own.

Barge-in during a call: a client's call already shown stays open (pipecat cancels only
handlers still running, and ours returns at once), so its output, whenever it comes, reaches
the context for the next ``response.create``; a server tool still running is cancelled by
pipecat, and its output item (and the context) says ``CANCELLED``.
"""

from __future__ import annotations

import json
from typing import Any

from loguru import logger

from cadence.transports.realtime.protocol import ProtocolError, new_id


class FunctionCallOutput:
    """A ``function_call`` output item of a response (whole when it is announced)."""

    def __init__(self, response: Any, item_id: str, output_index: int, call_id: str, name: str, arguments: str):
        self.response = response
        self.id = item_id
        self.output_index = output_index
        self.call_id, self.name, self.arguments = call_id, name, arguments

    def item(self, status: str = "completed") -> dict[str, Any]:
        return {"id": self.id, "type": "function_call", "object": "realtime.item", "status": status,
                "call_id": self.call_id, "name": self.name, "arguments": self.arguments}

    def events(self, previous_item_id: str | None) -> list[dict[str, Any]]:
        """Everything about the call, in OpenAI's order (the arguments come whole, as one delta)."""
        where = {"response_id": self.response.id, "item_id": self.id, "output_index": self.output_index,
                 "call_id": self.call_id}
        started, done = {**self.item("in_progress"), "arguments": ""}, self.item()  # the deltas carry them
        return [
            {"type": "response.output_item.added", "response_id": self.response.id,
             "output_index": self.output_index, "item": started},
            {"type": "conversation.item.added", "previous_item_id": previous_item_id, "item": started},
            {"type": "response.function_call_arguments.delta", **where, "delta": self.arguments},
            {"type": "response.function_call_arguments.done", **where, "name": self.name,
             "arguments": self.arguments},
            {"type": "response.output_item.done", "response_id": self.response.id,
             "output_index": self.output_index, "item": done},
            {"type": "conversation.item.done", "previous_item_id": previous_item_id, "item": done},
        ]

    def done_events(self, previous_item_id: str | None) -> list[dict[str, Any]]:
        return []  # announced whole already


class ToolEvents:
    """Function-call handlers of a ``RealtimeSession``."""

    conversation: Any
    responses: Any
    emit: Any
    tools: Any  # cadence.tools.client.ClientTools
    settings: Any  # cadence.transports.realtime.apply.SettingsApplier

    def on_llm_words(self, text: str) -> None:
        """The LLM's own text (before any stage after it): whether a reply said words before a call."""
        response = self.responses.current
        if response is not None and not response.done and text.strip():
            response.said = True

    def on_function_calls(self, calls: list[Any]) -> None:
        """The model called functions (pipecat's ``FunctionCallsStartedFrame``): each becomes
        an output item of the response in progress."""
        response = self.responses.current
        if response is None or response.done or response.unseen:
            logger.warning(f"realtime: {len(calls)} function call(s) after their response ended; not shown")
            return
        self._release()  # type: ignore[attr-defined]  # the reply is real: its user item and message first
        message = response.message
        if message is not None and not message.opened:
            if response.said:  # words before the call: their item first
                self._emit_all(message.opening())  # type: ignore[attr-defined]
            else:  # the reply is only the call: no message item at all, as OpenAI's
                response.output.remove(message)
                self.conversation.forget(message.id)
        for call in calls:
            output = FunctionCallOutput(response, new_id("item"), len(response.output), call.tool_call_id,
                                        call.function_name, json.dumps(call.arguments, ensure_ascii=False))
            response.output.append(output)
            previous = self.conversation.add(output.item(), output)
            for event in output.events(previous):
                self.emit(event)

    def on_function_result(self, call_id: str, name: str, result: Any) -> None:
        """A server-run tool returned: its result is a ``function_call_output`` item (a client
        tool's result is the client's own item, shown when it was created)."""
        if self.tools.answered(call_id):
            return
        output = result if isinstance(result, str) else json.dumps(result, ensure_ascii=False, default=str)
        item = {"id": new_id("item"), "type": "function_call_output", "object": "realtime.item",
                "status": "completed", "call_id": call_id, "output": output}
        previous = self.conversation.add(item)
        self.emit({"type": "conversation.item.added", "previous_item_id": previous, "item": item})
        self.emit({"type": "conversation.item.done", "previous_item_id": previous, "item": item})

    async def _on_function_call_output(self, item: dict[str, Any]) -> None:
        """``conversation.item.create`` of a ``function_call_output``: the waiting call gets it."""
        call_id, output = item.get("call_id"), item.get("output")
        if not isinstance(call_id, str) or not call_id:
            raise ProtocolError("invalid_value", "a function_call_output needs the call_id of the function_call"
                                " it answers", param="item.call_id")
        if not isinstance(output, str):
            raise ProtocolError("invalid_value", "item.output must be a string (e.g. JSON text)", param="item.output")
        call = next((i for i in self.conversation.items.values()
                     if i.get("type") == "function_call" and i.get("call_id") == call_id), None)
        if call is None:
            raise ProtocolError("item_not_found", f"no function_call with call_id {call_id!r} in this conversation",
                                param="item.call_id")
        if call.get("name") in self.settings.server_tool_names():
            raise ProtocolError("invalid_value", f"{call.get('name')!r} is a tool this server runs itself; its"
                                " output is the server's", param="item.call_id")
        if any(i.get("type") == "function_call_output" and i.get("call_id") == call_id
               for i in self.conversation.items.values()):
            raise ProtocolError("invalid_value", f"the call {call_id!r} has an output already", param="item.call_id")
        item = {**item, "id": item.get("id") or new_id("item"), "object": "realtime.item", "status": "completed"}
        # The context's result is written from the pipeline's head, in order before the next
        # response.create's run (pipecat's own result frame goes the long way round, through
        # the output); then the waiting call, if any, is settled.
        await self.conversation.set_tool_result(call_id, output)
        await self.tools.resolve(call_id, output)
        previous = self.conversation.add(item)
        self.emit({"type": "conversation.item.added", "previous_item_id": previous, "item": item})
        self.emit({"type": "conversation.item.done", "previous_item_id": previous, "item": item})
