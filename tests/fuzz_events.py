"""A deterministic corpus of hostile Realtime client messages (the fuzz test and
benchmarks/fuzz_realtime.py share it): wrong types, NaN/Infinity, huge integers, deep
nesting, lone surrogates, Inworld fields with wrong types, REST names, unknown items.

``corpus(n, seed)`` yields (raw message, event_id or None, param or None); every message must
be answered by an ``error`` carrying its event_id (where it has one) and naming ``param`` (the
field the hostile value was put in, where one is), or by the event its success sends.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator

WRONG_VALUES = ["high", [0.5], {"x": 1}, -1, 10 ** 30, True, None, "", "\ud800", 1.5e308]
RAW_VALUES = ["NaN", "Infinity", "-Infinity", "9" * 5000, "1e999999"]
SESSION_FIELDS = ["instructions", "output_modalities", "max_output_tokens", "tool_choice", "tools", "model",
                  "audio", "providerData", "tracing", "prompt", "truncation", "include"]
AUDIO_FIELDS = [("input", "turn_detection", "threshold"), ("input", "turn_detection", "silence_duration_ms"),
                ("input", "turn_detection", "type"), ("input", "turn_detection", "eagerness"),
                ("input", "turn_detection", "endOfTurnConfidenceThreshold"), ("input", "format", "type"),
                ("input", "transcription", "language"), ("output", "voice"), ("output", "speed"),
                ("output", "format", "rate"), ("input", "noise_reduction", "type")]
STT_FIELDS = ["endOfTurnConfidenceThreshold", "minEndOfTurnSilenceWhenConfident", "vadThreshold",
              "inactivityTimeoutSeconds", "maxEndOfTurnSilenceMs"]
PROVIDER_PARTS = ["memory", "backchannel", "responsiveness", "character", "stt", "turn_latency", "voice"]


def _nest(path: tuple, value) -> dict:
    for key in reversed(path):
        value = {key: value}
    return value


def _dumps(body: dict, raw_value: str | None) -> str:
    text = json.dumps(body, ensure_ascii=True)
    return text.replace('"__RAW__"', raw_value) if raw_value is not None else text


def corpus(n: int, seed: int = 7) -> Iterator[tuple[str, str | None]]:
    rng = random.Random(seed)
    for index in range(n):
        event_id = f"fz{index}"
        value = rng.choice(WRONG_VALUES)
        raw = rng.choice(RAW_VALUES) if rng.random() < 0.25 else None
        if raw is not None:
            value = "__RAW__"
        kind = rng.randrange(12)
        if kind == 0:
            field = rng.choice(SESSION_FIELDS)
            body, param = {"type": "session.update", "session": {field: value}}, f"session.{field}"
        elif kind == 1:
            path = rng.choice(AUDIO_FIELDS)
            audio = _nest(path, value)
            if path[1] == "turn_detection" and path[2] != "type":  # the hostile value the only fault
                audio["input"]["turn_detection"]["type"] = "semantic_vad" if path[2] == "eagerness" else "server_vad"
            body, param = {"type": "session.update", "session": {"audio": audio}}, ".".join(("session.audio", *path))
        elif kind == 2:
            field = rng.choice(STT_FIELDS)
            body = {"type": "session.update", "session": {"providerData": {"stt": {field: value}}}}
            param = f"session.providerData.stt.{field}"
        elif kind == 3:
            part = rng.choice(PROVIDER_PARTS)
            body, param = {"type": "session.update", "session": {"providerData": {part: value}}}, f"session.providerData.{part}"
        elif kind == 4:
            item_id = rng.choice(["item_x", value])
            body = {"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": value}
            param = None  # item_id or audio_end_ms: either may be named first
        elif kind == 5:
            field = rng.choice(["voiceId", "modelId", "instructions", "max_output_tokens", "output_modalities",
                                "metadata", "conversation", "input", "tool_choice"])
            body, param = {"type": "response.create", "response": {field: value}}, f"response.{field}"
        elif kind == 6:
            body = {"type": "conversation.item.create", "previous_item_id": rng.choice(["item_nope", value]),
                    "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}}
            param = "previous_item_id"
        elif kind == 7:
            body = {"type": rng.choice(["conversation.item.delete", "conversation.item.retrieve"]), "item_id": value}
            param = "item_id"
        elif kind == 8:
            body, param = {"type": "input_audio_buffer.append", "audio": value}, "audio"
        elif kind == 9:
            body = {"type": rng.choice(["response.cancel", "input_audio_buffer.commit", "session.explode",
                                        "output_audio_buffer.clear", 42])}
            param = "type" if body["type"] in ("session.explode", 42) else None
        elif kind == 10:
            depth = rng.choice([40, 200, 1000])
            yield '{"type": "session.update", "event_id": "%s", "session": {"x": %s%s}}' % (
                event_id, "[" * depth, "]" * depth), event_id, None
            continue
        else:
            yield rng.choice(["{not json", "[]", '"text"', "{}", '{"type": null}', "\x00" * 8]), None, None
            continue
        body["event_id"] = event_id
        yield _dumps(body, raw), event_id, param


def param_matches(expected: str | None, got: str | None) -> bool:
    """Whether an error's ``param`` names the field the hostile value was put in (or a part of
    it: a wrong value inside ``session.audio.input`` may be named at the key within it)."""
    if expected is None:
        return True
    return got is not None and (got == expected or got.startswith((expected + ".", expected + "[")))
