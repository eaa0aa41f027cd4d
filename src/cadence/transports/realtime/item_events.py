"""The Realtime client events that make or change conversation items: a committed audio
buffer, and ``conversation.item.*`` (create, retrieve, delete, truncate).

A part of ``RealtimeSession`` (a mixin): it uses the session's ``conversation`` and ``emit``.
"""

from __future__ import annotations

from typing import Any

from cadence.transports.realtime.protocol import ProtocolError, new_id


class ItemEvents:
    """Item-making handlers of a ``RealtimeSession``."""

    conversation: Any
    emit: Any
    turn: Any
    input: Any
    user_turns: Any

    async def _on_input_audio_buffer_commit(self, event, data) -> None:
        if self.turn.mode is not None:
            raise ProtocolError("invalid_state", "with turn detection on, the server commits the audio buffer;"
                                " set audio.input.turn_detection to null to commit yourself")
        pcm = self.input.take()
        item_id = self.user_turns.commit()
        try:
            text = await self.input.transcribe(pcm)
        except ProtocolError as exc:
            self.user_turns.finish(item_id, "", error=str(exc))
            raise
        self.user_turns.finish(item_id, text)
        if text:
            await self.conversation.append_message(item_id, "user", text)

    async def _on_conversation_item_create(self, event, data) -> None:
        item = data["item"]
        kind = item.get("type", "message")
        if kind not in ("message", "function_call_output"):
            raise ProtocolError("unsupported", f"item type {kind!r} cannot be created here: messages and"
                                " function_call_output items can (function calls are the model's)", param="item.type")
        after = data.get("previous_item_id")
        if after == "root" and self.conversation.last_id() is None:
            after = None  # the first item: "root" is where it goes (LiveKit's plugin says so)
        if after is not None and after != self.conversation.last_id():
            if after != "root" and after not in self.conversation.items:
                raise ProtocolError("item_not_found", f"no item {after!r} in this conversation",
                                    param="previous_item_id")
            raise ProtocolError("unsupported", "items are added at the end of the conversation; previous_item_id"
                                f" may only name its last item ({self.conversation.last_id()!r})",
                                param="previous_item_id")
        if item.get("id") and item["id"] in self.conversation.items:
            raise ProtocolError("invalid_value", f"an item {item['id']!r} already exists; give a new id or none",
                                param="item.id")
        if kind == "function_call_output":
            await self._on_function_call_output(item)  # type: ignore[attr-defined]  # (ToolEvents)
            return
        text = " ".join(part.get("text") or part.get("transcript") or "" for part in item.get("content") or []).strip()
        item = {**item, "id": item.get("id") or new_id("item"), "object": "realtime.item", "status": "completed"}
        previous = self.conversation.add(item)
        self.emit({"type": "conversation.item.added", "previous_item_id": previous, "item": item})
        self.emit({"type": "conversation.item.done", "previous_item_id": previous, "item": item})
        await self.conversation.append_message(item["id"], item.get("role") or "user", text)

    async def _on_conversation_item_retrieve(self, event, data) -> None:
        self.emit({"type": "conversation.item.retrieved", "item": self.conversation.get(data["item_id"])})

    async def _on_conversation_item_delete(self, event, data) -> None:
        await self.conversation.delete(data["item_id"])
        self.emit({"type": "conversation.item.deleted", "item_id": data["item_id"]})

    async def _on_conversation_item_truncate(self, event, data) -> None:
        item = self.conversation.get(data["item_id"])
        if item.get("role") != "assistant":
            raise ProtocolError("invalid_value", "only assistant items can be truncated", param="item_id")
        output = self.conversation.output_of(item["id"])
        audio_end_ms = data["audio_end_ms"]
        if output is None or audio_end_ms > output.audio_ms + 1:
            raise ProtocolError("invalid_value", f"audio_end_ms {audio_end_ms} is past the item's audio"
                                f" ({int(output.audio_ms) if output else 0} ms)", param="audio_end_ms")
        kept = output.truncate(audio_end_ms)
        await self.conversation.replace_text(item["id"], kept)
        item["content"] = [{"type": "output_audio", "transcript": kept}]
        self.emit({"type": "conversation.item.truncated", "item_id": item["id"],
                   "content_index": data["content_index"], "audio_end_ms": audio_end_ms})
