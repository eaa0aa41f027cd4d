"""The user's spoken turns as conversation items: speech started → committed → transcribed.

When the turn's reply comes by itself (automatic responses), the item is announced only
once that reply is real (its first audio or text, or its end): until then the user may go
on speaking and the turn resumes (``cadence.processors.resumption``), so the client sees one
item with the whole transcript, never an item for half a sentence.
"""

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
        self.deferred = False  # the turn ended; its item waits for the reply to be real
        self._pending_text: str | None = None  # its transcript, meanwhile

    def speech_started(self, start_secs: float) -> None:
        if self.current is None:
            self.current, self._committed = new_id("item"), False
        start_ms = max(0, int(self._heard_ms() - start_secs * 1000))
        self._emit({"type": "input_audio_buffer.speech_started", "audio_start_ms": start_ms, "item_id": self.current})

    def speech_stopped(self, stop_secs: float) -> None:
        if self.current:
            end_ms = max(0, int(self._heard_ms() - stop_secs * 1000))
            self._emit({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": end_ms, "item_id": self.current})

    def turn_ended(self, defer: bool = False) -> None:
        """The turn stage decided the user finished: the audio is committed (or, with
        ``defer``, will be when the reply is real)."""
        if self.current and not self._committed:
            if defer:
                self.deferred = True
                return
            self.commit(self.current)
            self._committed = True

    def resumed(self) -> None:
        """The user went on before the reply was heard: the same item goes on being spoken."""
        self.deferred, self._pending_text = False, None

    def release(self) -> str | None:
        """The reply is real: the deferred item is committed and transcribed now; returns the
        item whose context message the caller must claim (None: nothing to claim)."""
        if not self.deferred:
            return None
        self.deferred = False
        text, self._pending_text = self._pending_text, None
        if text is not None:
            return self._announce(text)
        if self.current and not self._committed:
            self.commit(self.current)
            self._committed = True
        return None

    async def transcribed(self, text: str, defer: bool = False) -> None:
        """The context stage took the turn's transcript (and added it to the context); with
        ``defer`` (or a deferred turn end) it is announced with the reply."""
        if self.current is None:
            return
        if (self.deferred or defer) and text:
            self.deferred = True
            self._pending_text = text  # announced with the reply
            return
        self.deferred = False
        item_id = self._announce(text)
        if item_id:
            await self._conversation.claim_new(item_id, "user")

    def _announce(self, text: str) -> str | None:
        """Commit (if not yet) and transcribe the current item; the item to claim, if any text."""
        item_id = self.current if self._committed else self.commit(self.current)
        self.current = None
        self.finish(item_id, text)
        return item_id if text else None

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
