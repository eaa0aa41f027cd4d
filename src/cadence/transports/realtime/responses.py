"""Assistant responses on the wire: their output items, their deltas, and which one is current.

A ``Response`` holds a list of output items (a spoken or written message; function calls,
``tool_events.FunctionCallOutput``), each with its ``output_index``. ``ResponseTracker``
knows the response in progress, the options ``response.create`` set for the next one,
and pairs the context aggregator's (lagging) assistant turns with the responses they
belong to.
"""

from __future__ import annotations

import base64
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from cadence.transports.realtime.protocol import ProtocolError


class MessageOutput:
    """One assistant message item of a response: text, or audio with its transcript."""

    def __init__(self, response: Response, item_id: str, output_index: int):
        self.response = response
        self.id = item_id
        self.output_index = output_index
        self.text_only = response.text_only
        self.text = ""  # text (text mode) or transcript of what was spoken (audio mode)
        self.audio_ms = 0.0
        self._spoken: list[tuple[float, str]] = []  # (audio ms when the text was spoken, text)
        self.previous: str | None = None  # the item before it in the conversation
        self.opened = False  # its added events were sent (at its first words, or at the end)

    def opening(self) -> list[dict[str, Any]]:
        """Its added events, the first time only: a reply's message is announced with its
        first words, so a response that only calls a function has no empty message."""
        if self.opened:
            return []
        self.opened = True
        return self.added_events(self.previous)

    def _where(self) -> dict[str, Any]:
        return {"response_id": self.response.id, "item_id": self.id, "output_index": self.output_index,
                "content_index": 0}

    def part(self) -> dict[str, Any]:
        return {"type": "text", "text": self.text} if self.text_only else {"type": "audio", "transcript": self.text}

    def item(self) -> dict[str, Any]:
        done = self.response.done
        status = "in_progress" if not done else ("completed" if self.response.status == "completed" else "incomplete")
        content = ([{"type": "output_text", "text": self.text}] if self.text_only
                   else [{"type": "output_audio", "transcript": self.text}])
        return {"id": self.id, "type": "message", "object": "realtime.item", "role": "assistant",
                "status": status, "content": content if (self.text or done) else []}

    def added_events(self, previous_item_id: str | None) -> list[dict[str, Any]]:
        item = {**self.item(), "status": "in_progress", "content": []}  # as OpenAI's: whatever it became since
        return [
            {"type": "response.output_item.added", "response_id": self.response.id,
             "output_index": self.output_index, "item": item},
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

    def done_events(self, previous_item_id: str | None) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        if self.text_only:
            events.append({"type": "response.output_text.done", **self._where(), "text": self.text})
        else:
            events.append({"type": "response.output_audio.done", **self._where()})
            events.append({"type": "response.output_audio_transcript.done", **self._where(),
                           "transcript": self.text})
        item = self.item()
        return [*events,
                {"type": "response.content_part.done", **self._where(), "part": self.part()},
                {"type": "response.output_item.done", "response_id": self.response.id,
                 "output_index": self.output_index, "item": item},
                {"type": "conversation.item.done", "previous_item_id": previous_item_id, "item": item}]

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


@dataclass
class ResponseOptions:
    """What ``response.create`` asked of the next response; ``overrides`` are LLM settings
    for that response only, restored when it ends."""

    modalities: list[str]
    overrides: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, str] | None = None  # echoed in response.created / response.done, as OpenAI does
    voice: str | None = None  # audio.output.voice for this response only
    tts: dict[str, Any] | None = None  # providerData.tts for this response only

    @classmethod
    def requested(cls, options: dict[str, Any], session_modalities: list[str]) -> ResponseOptions:
        """A ``response.create``'s ``response`` object (already type-checked by the protocol
        parser); ProtocolError for what Cadence cannot do yet."""
        overrides: dict[str, Any] = {}
        if options.get("instructions"):
            overrides["system_instruction"] = options["instructions"]
        if isinstance(options.get("max_output_tokens"), int):
            overrides["max_tokens"] = options["max_output_tokens"]
        for key in ("tools", "tool_choice"):  # checked by the settings applier, sent for this response only
            if options.get(key) is not None:
                overrides[key] = options[key]
        metadata = options.get("metadata")
        _check_metadata(metadata)
        audio, provider_data = options.get("audio") or {}, options.get("providerData") or {}
        if not isinstance(audio, dict) or not isinstance(provider_data, dict):
            raise ProtocolError("invalid_value", "response.audio and response.providerData must be objects",
                                param="response.audio" if not isinstance(audio, dict) else "response.providerData")
        output = audio.get("output") or {}
        voice = output.get("voice") if isinstance(output, dict) else None
        voice = voice.get("id") if isinstance(voice, dict) else voice
        if voice is not None and not isinstance(voice, str):
            raise ProtocolError("invalid_value", "response.audio.output.voice must be a voice name or {id}",
                                param="response.audio.output.voice")
        tts = provider_data.get("tts")
        return cls(options.get("output_modalities") or list(session_modalities), overrides, metadata, voice, tts)


def _check_metadata(metadata: Any) -> None:
    """OpenAI's limits: up to 16 pairs, keys of ≤ 64 characters, string values of ≤ 512."""
    if metadata is None:
        return
    if not isinstance(metadata, dict) or len(metadata) > 16:
        raise ProtocolError("invalid_value", "response.metadata must be an object of at most 16 key-value pairs",
                            param="response.metadata")
    for key, value in metadata.items():
        if len(key) > 64 or not isinstance(value, str) or len(value) > 512:
            raise ProtocolError("invalid_value", f"response.metadata.{key[:64]}: keys are at most 64 characters and"
                                " values strings of at most 512", param=f"response.metadata.{key[:64]}")


class Response:
    """One response: its id, status, usage and output items in order."""

    def __init__(self, response_id: str, options: ResponseOptions):
        self.unseen = False  # dropped before it was real (a resumed turn): never shown to the client
        self.started_at = time.monotonic()
        self.conversation_id: str | None = "auto"  # None: an out-of-band response (conversation: "none")
        self.id = response_id
        self.options = options
        self.modalities = options.modalities
        self.text_only = options.modalities == ["text"]
        self.output: list[Any] = []  # MessageOutput and FunctionCallOutput items, in order
        self.done = False
        self.status = "in_progress"
        self.usage: Any = None
        self.reason: str | None = None  # why it ended early: turn_detected | client_cancelled
        self.error: dict[str, Any] | None = None  # why it failed: {type, code, message}
        self.interrupted = False  # the user cut in (barge-in) while it was in progress
        self.said = False  # the model wrote words for it (the LLM's text, spoken or not)

    @property
    def message(self) -> MessageOutput | None:
        """The message item the reply's text and audio go to (the last one opened)."""
        return next((o for o in reversed(self.output) if isinstance(o, MessageOutput)), None)

    def add_message(self, item_id: str) -> MessageOutput:
        output = MessageOutput(self, item_id, len(self.output))
        self.output.append(output)
        return output

    def resource(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "object": "realtime.response", "status": self.status,
                                "output": [o.item() for o in self.output] if self.done else [],
                                "output_modalities": self.modalities, "conversation_id": self.conversation_id,
                                "metadata": self.options.metadata}
        if self.done:
            if self.status == "completed":
                body["status_details"] = None
            elif self.status == "failed":
                body["status_details"] = {"type": "failed", "error": self.error}
            else:
                body["status_details"] = {"type": self.status, "reason": self.reason}
            prompt = getattr(self.usage, "prompt_tokens", 0) or 0
            completion = getattr(self.usage, "completion_tokens", 0) or 0
            details = getattr(self.usage, "prompt_tokens_details", None)  # the router's own usage
            cached = getattr(self.usage, "cache_read_input_tokens", 0) or getattr(details, "cached_tokens", 0) or 0
            body["usage"] = {"total_tokens": prompt + completion, "input_tokens": prompt, "output_tokens": completion,
                             "input_token_details": {"cached_tokens": cached, "text_tokens": prompt, "audio_tokens": 0},
                             "output_token_details": {"text_tokens": completion, "audio_tokens": 0}}
        return body

    def finish(self, status: str, reason: str | None = None, error: dict[str, Any] | None = None) -> None:
        self.done, self.status, self.reason, self.error = True, status, reason, error


class ResponseTracker:
    """The response in progress, the options for the next one, the response whose audio is
    playing, and the pairing of the assistant aggregator's turns (which lag the LLM: it sits
    after the output) with their responses.

    Without barge-in a new reply can start while the last one still plays; the LLM's text
    belongs to the newest response, what is spoken to the oldest one not done.
    """

    MAX_OPEN = 16  # responses started and not ended that are remembered

    def __init__(self, default_modalities: list[str]):
        self.default_modalities = default_modalities
        self.current: Response | None = None
        self._next: ResponseOptions | None = None
        self._open: deque[Response] = deque(maxlen=self.MAX_OPEN)  # started, in order
        self._unpaired: deque[Response] = deque(maxlen=self.MAX_OPEN)  # started, assistant turn not begun
        self._turns: deque[Response] = deque(maxlen=self.MAX_OPEN)  # assistant turn begun, not ended

    @property
    def active(self) -> bool:
        return self.current is not None and not self.current.done

    @property
    def requested(self) -> bool:
        """A ``response.create`` waits for its reply to begin."""
        return self._next is not None

    def replying_since(self) -> float | None:
        """When the response in progress began (monotonic clock), or None when none is."""
        return self.current.started_at if self.active else None

    @property
    def speaking(self) -> Response | None:
        """The response whose audio and transcript are being output now."""
        while self._open and self._open[0].done:
            self._open.popleft()
        return next((r for r in self._open if not r.text_only), None)

    def request(self, options: ResponseOptions) -> None:
        """``response.create``: the next response takes these options."""
        self._next = options

    def start(self, response_id: str) -> Response:
        """The LLM began a reply: a new current response with the requested (or session) options."""
        options = self._next or ResponseOptions(list(self.default_modalities))
        self._next = None
        self.current = Response(response_id, options)
        self._open.append(self.current)
        self._unpaired.append(self.current)
        return self.current

    def assistant_turn_started(self) -> None:
        """The assistant aggregator began a turn: it belongs to the oldest response not yet
        paired (a response that ended before its turn began is skipped)."""
        while self._unpaired:
            response = self._unpaired.popleft()
            if not response.done:
                self._turns.append(response)
                return

    def assistant_turn_stopped(self) -> Response | None:
        """The response the assistant turn that just ended belongs to."""
        return self._turns.popleft() if self._turns else None
