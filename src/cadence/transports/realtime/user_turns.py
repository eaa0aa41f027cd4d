"""The user's spoken turns as conversation items: speech started → committed → transcribed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cadence.transports.realtime.conversation import Conversation
from cadence.transports.realtime.protocol import new_id


class UserTurns:
    """Reports a spoken (or manually committed) user turn as one item with consistent ids."""

    def __init__(self, conversation: Conversation, emit: Callable[[dict[str, Any]], None],
                 heard_ms: Callable[[], float]):
        self._conversation = conversation
        self._emit = emit
        self._heard_ms = heard_ms
        self.current: str | None = None  # the item being spoken
        self._committed = False

    def speech_started(self, start_secs: float) -> None:
        if self.current is None:
            self.current, self._committed = new_id("item"), False
        start_ms = max(0, int(self._heard_ms() - start_secs * 1000))
        self._emit({"type": "input_audio_buffer.speech_started", "audio_start_ms": start_ms, "item_id": self.current})

    def speech_stopped(self, stop_secs: float) -> None:
        if self.current:
            end_ms = max(0, int(self._heard_ms() - stop_secs * 1000))
            self._emit({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": end_ms, "item_id": self.current})

    def turn_ended(self) -> None:
        """The turn stage decided the user finished: the audio is committed."""
        if self.current and not self._committed:
            self.commit(self.current)
            self._committed = True

    async def transcribed(self, text: str) -> None:
        """The context stage took the turn's transcript (and added it to the context)."""
        if self.current is None:
            return
        item_id = self.current if self._committed else self.commit(self.current)
        self.current = None
        self.finish(item_id, text)
        if text:
            await self._conversation.claim_new(item_id, "user")

    def commit(self, item_id: str | None = None) -> str:
        """A user audio item enters the conversation (transcript still to come)."""
        item_id = item_id or new_id("item")
        item = {"id": item_id, "type": "message", "object": "realtime.item", "role": "user", "status": "completed",
                "content": [{"type": "input_audio", "transcript": None}]}
        previous = self._conversation.add(item)
        self._emit({"type": "input_audio_buffer.committed", "previous_item_id": previous, "item_id": item_id})
        self._emit({"type": "conversation.item.added", "previous_item_id": previous, "item": item})
        return item_id

    def finish(self, item_id: str, text: str, error: str | None = None) -> None:
        """The item's transcript: ``completed``, or ``failed`` (nothing recognised, or ``error``)."""
        item = self._conversation.items.get(item_id)
        if item is None:
            return
        item["content"] = [{"type": "input_audio", "transcript": text}]
        if text:
            self._emit({"type": "conversation.item.input_audio_transcription.completed", "item_id": item_id,
                        "content_index": 0, "transcript": text,
                        "usage": {"type": "duration", "seconds": round(self._heard_ms() / 1000, 3)}})
        else:
            self._emit({"type": "conversation.item.input_audio_transcription.failed", "item_id": item_id,
                        "content_index": 0, "error": {"type": "transcription_error",
                                                      "code": "transcription_failed" if error else "no_speech",
                                                      "message": error or "no speech was recognised"}})
        self._emit({"type": "conversation.item.done", "previous_item_id": self._conversation.previous_of(item_id),
                    "item": item})
