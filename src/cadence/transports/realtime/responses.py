"""One assistant response on the wire: its ids, its deltas, and the events that open and close it."""

from __future__ import annotations

import base64
from typing import Any


class Response:
    """A response and the single assistant message item it produces."""

    def __init__(self, response_id: str, item_id: str, modalities: list[str]):
        self.id = response_id
        self.item_id = item_id
        self.modalities = modalities
        self.text_only = modalities == ["text"]
        self.done = False
        self.status = "in_progress"
        self.text = ""  # text (text mode) or transcript of what was spoken (audio mode)
        self.audio_ms = 0.0
        self._spoken: list[tuple[float, str]] = []  # (audio ms when the text was spoken, text)
        self.usage: Any = None
        self.reason: str | None = None  # why it ended early: turn_detected | client_cancelled

    def _where(self) -> dict[str, Any]:
        return {"response_id": self.id, "item_id": self.item_id, "output_index": 0, "content_index": 0}

    def part(self) -> dict[str, Any]:
        if self.text_only:
            return {"type": "text", "text": self.text}
        return {"type": "audio", "transcript": self.text}

    def item(self) -> dict[str, Any]:
        status = "in_progress" if not self.done else ("completed" if self.status == "completed" else "incomplete")
        kind = "output_text" if self.text_only else "output_audio"
        content = [{"type": kind, "text": self.text}] if self.text_only else [{"type": kind, "transcript": self.text}]
        return {"id": self.item_id, "type": "message", "object": "realtime.item", "role": "assistant",
                "status": status, "content": content if (self.text or self.done) else []}

    def resource(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "object": "realtime.response", "status": self.status,
                                "output": [self.item()] if self.done else [], "output_modalities": self.modalities,
                                "conversation_id": "auto"}
        if self.done:
            body["status_details"] = None if self.status == "completed" else {"type": self.status,
                                                                               "reason": self.reason}
            prompt = getattr(self.usage, "prompt_tokens", 0) or 0
            completion = getattr(self.usage, "completion_tokens", 0) or 0
            cached = getattr(self.usage, "cache_read_input_tokens", 0) or 0
            body["usage"] = {"total_tokens": prompt + completion, "input_tokens": prompt, "output_tokens": completion,
                             "input_token_details": {"cached_tokens": cached, "text_tokens": prompt, "audio_tokens": 0},
                             "output_token_details": {"text_tokens": completion, "audio_tokens": 0}}
        return body

    def started_events(self, previous_item_id: str | None) -> list[dict[str, Any]]:
        item = self.item()
        return [
            {"type": "response.created", "response": self.resource()},
            {"type": "response.output_item.added", "response_id": self.id, "output_index": 0, "item": item},
            {"type": "conversation.item.added", "previous_item_id": previous_item_id, "item": item},
            {"type": "response.content_part.added", **self._where(), "part": self.part()},
        ]

    def text_delta(self, text: str) -> dict[str, Any]:
        self.text += text
        return {"type": "response.output_text.delta", **self._where(), "delta": text}

    def transcript_delta(self, text: str) -> dict[str, Any]:
        piece = text if not self.text or text.startswith(" ") else " " + text
        self.text += piece
        self._spoken.append((self.audio_ms, piece))
        return {"type": "response.output_audio_transcript.delta", **self._where(), "delta": piece}

    def audio_delta(self, audio: bytes, duration_ms: float) -> dict[str, Any]:
        self.audio_ms += duration_ms
        return {"type": "response.output_audio.delta", **self._where(), "delta": base64.b64encode(audio).decode()}

    def finished_events(self, status: str, previous_item_id: str | None, reason: str | None = None
                        ) -> list[dict[str, Any]]:
        self.done, self.status, self.reason = True, status, reason
        events: list[dict[str, Any]] = []
        if self.text_only:
            events.append({"type": "response.output_text.done", **self._where(), "text": self.text})
        else:
            events.append({"type": "response.output_audio.done", **self._where()})
            events.append({"type": "response.output_audio_transcript.done", **self._where(), "transcript": self.text})
        item = self.item()
        events += [
            {"type": "response.content_part.done", **self._where(), "part": self.part()},
            {"type": "response.output_item.done", "response_id": self.id, "output_index": 0, "item": item},
            {"type": "conversation.item.done", "previous_item_id": previous_item_id, "item": item},
            {"type": "response.done", "response": self.resource()},
        ]
        return events

    def truncate(self, audio_end_ms: float) -> str:
        """The transcript as far as the listener heard it: text whose audio started before
        ``audio_end_ms``, cut in proportion within the last sentence heard."""
        kept = ""
        for index, (start_ms, piece) in enumerate(self._spoken):
            if start_ms >= audio_end_ms:
                break
            end_ms = self._spoken[index + 1][0] if index + 1 < len(self._spoken) else self.audio_ms
            if end_ms <= audio_end_ms:
                kept += piece
            else:
                words = piece.split(" ")
                share = (audio_end_ms - start_ms) / max(1.0, end_ms - start_ms)
                kept += " ".join(words[: int(len(words) * share)])
        self.text = kept.strip()
        return self.text
