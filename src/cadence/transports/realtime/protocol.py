"""The OpenAI Realtime wire protocol: parsing client events, shaping errors, making ids.

Client events are validated against the ``openai`` SDK's own pydantic types (GA shape),
after beta-era aliases are rewritten to their GA names, so what the official SDK can send
is exactly what is accepted. Knows nothing about models or pipelines.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import secrets
import typing
from typing import Any

from openai.types.realtime.realtime_client_event import RealtimeClientEvent
from pydantic import ValidationError


CLIENT_EVENT_CLASSES = {
    typing.get_args(cls.model_fields["type"].annotation)[0]: cls
    for cls in typing.get_args(typing.get_args(RealtimeClientEvent)[0])
}
MAX_MESSAGE_BYTES = 4 * 1024 * 1024

# Beta-era session keys still sent by many clients → where they live in the GA session.
_AUDIO_FORMATS = {
    "pcm16": {"type": "audio/pcm", "rate": 24000},
    "g711_ulaw": {"type": "audio/pcmu"},
    "g711_alaw": {"type": "audio/pcma"},
}
# REST TTS field names that do nothing inside a realtime session.
REST_NAMES = {"voiceId": "audio.output.voice", "modelId": "audio.output.model"}


class ProtocolError(Exception):
    """A client mistake, reported as an ``error`` event; the session carries on."""

    def __init__(self, code: str, message: str, *, param: str | None = None, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.code = code
        self.param = param
        self.kind = kind
        self.event_id: str | None = None  # the client's event_id, where the message got as far as naming one


def new_id(prefix: str) -> str:
    """An id in OpenAI's style, e.g. ``item_3f9a...``."""
    return f"{prefix}_{secrets.token_hex(10)}"


def error_event(exc: ProtocolError, client_event_id: str | None) -> dict[str, Any]:
    """The ``error`` server event for ``exc``."""
    return {
        "type": "error",
        "event_id": new_id("event"),
        "error": {"type": exc.kind, "code": exc.code, "message": str(exc), "param": exc.param,
                  "event_id": client_event_id or exc.event_id},
    }


MAX_DEPTH = 32  # nesting a Realtime event never needs (a tool's JSON schema included)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


MAX_NUMBER = 2 ** 53  # past this no field of the protocol means anything (and floats lose integers)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or abs(value) > MAX_NUMBER:
        raise ValueError(f"{text[:40]} is out of range (numbers are at most 2**53)")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > 16 or abs(value := int(text)) > MAX_NUMBER:
        raise ValueError(f"{text[:40]}{'...' if len(text) > 40 else ''} is out of range (numbers are at most 2**53)")
    return value


class _BadNumber:
    """Stands in for a number JSON cannot mean, to find where in the message it was."""


def _bad_number_path(raw: str | bytes) -> str | None:
    """The field (``session.audio.input.turn_detection.threshold``, ``items[2].id``) holding
    the first NaN, Infinity or out-of-range number of a message that parses otherwise."""
    bad = _BadNumber()
    try:
        data = json.loads(raw, parse_constant=lambda _: bad,
                          parse_float=lambda text: bad if _out_of_range(text) else float(text),
                          parse_int=lambda text: bad if _out_of_range(text) else int(text))
    except (ValueError, RecursionError):
        return None
    stack: list[tuple[Any, str]] = [(data, "")]
    while stack:
        value, path = stack.pop()
        if value is bad:
            return path or None
        if isinstance(value, dict):
            stack += [(v, f"{path}.{k}" if path else str(k)) for k, v in reversed(list(value.items()))]
        elif isinstance(value, list):
            stack += [(v, f"{path}[{i}]") for i, v in reversed(list(enumerate(value)))]
    return None


def _out_of_range(text: str) -> bool:
    try:
        (_finite_float if any(c in text for c in ".eE") else _bounded_int)(text)
        return False
    except ValueError:
        return True


def _too_deep(value: Any) -> bool:
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > MAX_DEPTH:
                    return True
                stack.append((child, depth + 1))
    return False


def without_surrogates(value: Any) -> Any:
    """``value`` with lone UTF-16 surrogates (which UTF-8 cannot encode) replaced by U+FFFD."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, dict):
        return {without_surrogates(k): without_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_surrogates(v) for v in value]
    return value


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # JSON's escape of a UTF-16 surrogate


def decode_message(raw: str | bytes) -> dict[str, Any]:
    """One WebSocket text message → a JSON object with a ``type``; ProtocolError otherwise
    (carrying the message's ``event_id`` where one can be found, even in invalid JSON)."""
    try:
        return _decode(raw)
    except ProtocolError as exc:
        ends = raw[:8192] + raw[-8192:]  # where an event_id is, without scanning megabytes
        found = _EVENT_ID.search(ends if isinstance(ends, str) else bytes(ends).decode("utf-8", "replace"))
        exc.event_id = exc.event_id or (found.group(1) if found else None)
        raise


_EVENT_ID = re.compile(r'"event_id"\s*:\s*"([A-Za-z0-9_.:-]{1,128})"')


def _decode(raw: str | bytes) -> dict[str, Any]:
    if len(raw) > MAX_MESSAGE_BYTES:
        raise ProtocolError("message_too_large", f"message is {len(raw)} bytes; the limit is {MAX_MESSAGE_BYTES}")
    try:
        data = json.loads(raw, parse_constant=_no_constant, parse_float=_finite_float, parse_int=_bounded_int)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError("invalid_json", f"message is not valid JSON: {exc}") from exc
    except ValueError as exc:  # NaN/Infinity, or an integer of more than 4300 digits
        param = _bad_number_path(raw)
        raise ProtocolError("invalid_json", f"{param}: {exc}" if param else f"message is not valid JSON: {exc}",
                            param=param) from exc
    except RecursionError as exc:
        raise ProtocolError("invalid_json", f"message nests deeper than {MAX_DEPTH} levels") from exc
    # Audio appends (most messages) hold three brackets: walk only what could nest that deep.
    brackets = raw.count("{") + raw.count("[") if isinstance(raw, str) else raw.count(b"{") + raw.count(b"[")
    if brackets > MAX_DEPTH and _too_deep(data):
        raise ProtocolError("invalid_json", f"message nests deeper than {MAX_DEPTH} levels")
    text = raw if isinstance(raw, str) else bytes(raw).decode("utf-8", "replace")
    if _SURROGATE_ESCAPE.search(text):
        data = without_surrogates(data)  # a lone surrogate cannot be sent back (UTF-8): U+FFFD
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolError("invalid_event", "every event must be a JSON object with a string 'type'", param="type")
    return data


def normalize(data: dict[str, Any]) -> dict[str, Any]:
    """Rewrite beta-era aliases to GA names (in place) and reject REST-style names."""
    if data["type"] == "session.update" and isinstance(data.get("session"), dict):
        normalize_session(data["session"])
    if data["type"] == "response.create" and isinstance(data.get("response"), dict):
        response = data["response"]
        _reject_rest_names({k: v for k, v in response.items() if k not in ("input", "metadata")}, "response")
        if "modalities" in response:
            response.setdefault("output_modalities", response.pop("modalities"))
        if "output_modalities" in response:
            response["output_modalities"] = _audio_with_transcript(response["output_modalities"])
        if "max_response_output_tokens" in response:
            response.setdefault("max_output_tokens", response.pop("max_response_output_tokens"))
    return data


def normalize_session(session: dict[str, Any]) -> None:
    """Beta keys → GA keys inside a session object; ProtocolError for REST TTS names."""
    _reject_rest_names(session, "session")
    session.setdefault("type", "realtime")
    audio = session.setdefault("audio", {}) if any(
        k in session for k in ("voice", "input_audio_format", "output_audio_format", "input_audio_transcription",
                               "turn_detection")
    ) else session.get("audio", {})
    if "modalities" in session:
        session.setdefault("output_modalities", session.pop("modalities"))
    if "output_modalities" in session:
        session["output_modalities"] = _audio_with_transcript(session["output_modalities"])
    if "max_response_output_tokens" in session:
        session.setdefault("max_output_tokens", session.pop("max_response_output_tokens"))
    if "voice" in session:
        audio.setdefault("output", {}).setdefault("voice", session.pop("voice"))
    for key, side in (("input_audio_format", "input"), ("output_audio_format", "output")):
        if key in session:
            value = session.pop(key)
            audio.setdefault(side, {})["format"] = _AUDIO_FORMATS.get(value, value) if isinstance(value, str) else value
    if "input_audio_transcription" in session:
        audio.setdefault("input", {})["transcription"] = session.pop("input_audio_transcription")
    if "turn_detection" in session:
        audio.setdefault("input", {})["turn_detection"] = session.pop("turn_detection")


def _audio_with_transcript(modalities: Any) -> Any:
    """Both modalities (beta's default ``["text", "audio"]``; Inworld's ``["audio", "text"]``, which
    pipecat's Inworld client sends) mean audio with its transcript: GA's ``["audio"]``."""
    if isinstance(modalities, list) and len(modalities) == 2 and set(modalities) == {"audio", "text"}:
        return ["audio"]
    return modalities


def _reject_rest_names(node: Any, path: str) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in REST_NAMES:
                raise ProtocolError(
                    "unsupported_field",
                    f"'{key}' is the REST TTS API's field; inside a realtime session use {REST_NAMES[key]}",
                    param=f"{path}.{key}",
                )
            if key != "providerData":
                _reject_rest_names(value, f"{path}.{key}")


def parse_client_event(data: dict[str, Any]) -> Any:
    """Validate one decoded client message (normalized in place) as the SDK's typed event."""
    normalize(data)
    cls = CLIENT_EVENT_CLASSES.get(data["type"])
    if cls is None:
        raise ProtocolError("unknown_event", f"unknown event type {data['type']!r}; client events are:"
                            f" {', '.join(sorted(CLIENT_EVENT_CLASSES))}", param="type")
    try:
        return cls.model_validate(_without_item_references(data))
    except ValidationError as exc:
        error = _the_fault(exc.errors(include_url=False))
        param = error_param(error["loc"]) or None
        raise ProtocolError("invalid_value", f"{param or data['type']}: {error['msg']}", param=param) from exc


def _the_fault(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """The error to report. In a union (server_vad | semantic_vad, the item and content types)
    every member reports; the member whose ``type`` the client chose names the real fault,
    not the others' "type should be 'server_vad'". With no such member, the ``type`` itself."""
    wrong_type = [e for e in errors if e["type"] == "literal_error" and e["loc"][-1:] == ("type",)]
    tags = [e["loc"][:-1] for e in wrong_type]
    chosen = [e for e in errors if not any(e["loc"][:len(tag)] == tag for tag in tags)]
    return (chosen or wrong_type or errors)[0]


def _without_item_references(data: dict[str, Any]) -> dict[str, Any]:
    """``response.input`` may point at conversation items (``{"type": "item_reference", "id"}``,
    as OpenAI's out-of-band guide shows) though the SDK's ``ConversationItem`` union, which the
    event's type uses, lacks it: each stands in for an empty message while the rest is
    validated (out_of_band.py resolves them)."""
    items = (data.get("response") or {}).get("input") if data["type"] == "response.create" else None
    if not isinstance(items, list) or not any(isinstance(i, dict) and i.get("type") == "item_reference" for i in items):
        return data
    stand_in = {"type": "message", "role": "user", "content": []}
    items = [stand_in if isinstance(i, dict) and i.get("type") == "item_reference" else i for i in items]
    return {**data, "response": {**data["response"], "input": items}}


_TYPE_TAGS = ("str", "int", "float", "bool", "dict", "list", "none")


def error_param(loc: tuple[Any, ...], prefix: tuple[str, ...] = ()) -> str:
    """A pydantic error location as the dotted field path a client knows (``session.audio.output.voice``),
    without the tags pydantic adds for union members and model classes."""
    def is_key(part: Any) -> bool:
        text = str(part)
        if isinstance(part, int):
            return True
        # Client keys start in lower case; model class names (AudioPCM, ServerVad) do not.
        return not (text.lower() in _TYPE_TAGS or "[" in text or text.startswith(("function-", "tagged-union"))
                    or text[:1].isupper())
    return ".".join([*prefix, *(str(p) for p in loc if is_key(p))])


def decode_audio(b64: str) -> bytes:
    """Base64 audio → bytes; ProtocolError naming ``audio`` when it is not valid base64."""
    try:
        return base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProtocolError("invalid_audio", f"audio is not valid base64: {exc}", param="audio") from exc
