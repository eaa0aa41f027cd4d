"""The effective Realtime session object, and what each setting means for the pipeline.

``session.update`` objects are merged into one effective session (echoed whole in
``session.created`` / ``session.updated``). ``turn_settings`` turns the turn-detection
part — OpenAI's ``server_vad`` / ``semantic_vad`` fields and Inworld's STT fields, inside
``turn_detection`` or ``providerData.stt`` — into the numbers Silero and smart-turn use.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from cadence.transports.realtime.protocol import ProtocolError, new_id

# providerData features Cadence accepts but does not act on yet; reported, never ignored.
NOT_YET = {"memory", "backchannel", "responsiveness", "tts"}
# semantic_vad eagerness → (smart-turn threshold, longest wait in seconds)
EAGERNESS = {"low": (0.7, 8.0), "medium": (0.5, 4.0), "auto": (0.5, 4.0), "high": (0.3, 2.0)}


@dataclass(frozen=True)
class TurnSettings:
    """Turn detection as the pipeline sees it; ``None`` mode means the client commits."""

    mode: str | None  # "server_vad" | "semantic_vad" | None
    vad_confidence: float
    vad_stop_secs: float
    end_of_turn_threshold: float
    max_wait_secs: float
    create_response: bool
    interrupt_response: bool
    idle_timeout_ms: int | None


def default_session(*, session_id: str, model: str, instructions: str, voice: str,
                    stt_model: str, vad_stop_secs: float, turn_threshold: float) -> dict[str, Any]:
    """The session a new connection starts with, from the YAML config."""
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": session_id,
        "model": model,
        "instructions": instructions,
        "output_modalities": ["audio"],
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": {"model": stt_model, "language": "en"},
                "noise_reduction": None,
                "turn_detection": {
                    "type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
                    "silence_duration_ms": int(vad_stop_secs * 1000), "create_response": True,
                    "interrupt_response": True, "idle_timeout_ms": None,
                    "endOfTurnConfidenceThreshold": turn_threshold,
                },
            },
            "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": voice, "speed": 1.0},
        },
        "providerData": {},
    }


def merge_session(current: dict[str, Any], update: dict[str, Any], *, voices: list[str]) -> dict[str, Any]:
    """``current`` with ``update`` applied; raises ProtocolError for values Cadence cannot honour."""
    merged = copy.deepcopy(current)
    update = copy.deepcopy(update)
    provider_data = update.pop("providerData", None)
    update.pop("type", None)
    audio = update.pop("audio", None) or {}
    for key, value in update.items():
        if key in ("id", "object"):
            continue
        merged[key] = value
    for side in ("input", "output"):
        for key, value in (audio.get(side) or {}).items():
            merged["audio"][side][key] = value  # whole sub-objects replace, as in OpenAI's API
    if provider_data is not None:
        if not isinstance(provider_data, dict):
            raise ProtocolError("invalid_value", "providerData must be an object", param="session.providerData")
        _deep_merge(merged["providerData"], provider_data)
    _check(merged, voices)
    language = (merged["audio"]["input"].get("transcription") or {}).get("language")
    model = (current["audio"]["input"].get("transcription") or {}).get("model", "")
    if language and model.endswith(".en") and language != "en":
        raise ProtocolError("invalid_value", f"the transcription model {model} is English-only; language must be 'en'",
                            param="session.audio.input.transcription.language")
    merged["providerData"]["unsupported"] = sorted(k for k in merged["providerData"] if k in NOT_YET)
    return merged


def _deep_merge(into: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = value


def _check(session: dict[str, Any], voices: list[str]) -> None:
    voice = session["audio"]["output"].get("voice")
    voice_id = voice.get("id") if isinstance(voice, dict) else voice
    if voice_id not in voices:
        raise ProtocolError("invalid_value", f"voice {voice_id!r} is not available; voices: {', '.join(voices)}",
                            param="session.audio.output.voice")
    speed = session["audio"]["output"].get("speed") or 1.0
    if not 0.25 <= speed <= 1.5:
        raise ProtocolError("invalid_value", "speed must be between 0.25 and 1.5", param="session.audio.output.speed")
    modalities = session.get("output_modalities") or ["audio"]
    if modalities not in (["audio"], ["text"]):
        raise ProtocolError("invalid_value", "output_modalities must be ['audio'] or ['text']",
                            param="session.output_modalities")
    settings = turn_settings(session)
    for name, value in (("endOfTurnConfidenceThreshold", settings.end_of_turn_threshold),
                        ("vadThreshold", settings.vad_confidence)):
        if not 0 <= value <= 1:
            raise ProtocolError("invalid_value", f"{name} must be between 0 and 1",
                                param=f"session.audio.input.turn_detection.{name}")


def turn_settings(session: dict[str, Any]) -> TurnSettings:
    """The pipeline's turn-detection numbers for ``session``."""
    detection = session["audio"]["input"].get("turn_detection")
    stt = (session.get("providerData") or {}).get("stt") or {}
    if not detection:
        return TurnSettings(None, 0.5, 0.2, 0.5, 3.0, False, False, None)
    merged = {**detection, **stt}  # Inworld's names may sit in either place
    mode = detection.get("type", "server_vad")
    threshold, max_wait = 0.5, 3.0
    if mode == "semantic_vad":
        threshold, max_wait = EAGERNESS[detection.get("eagerness") or "auto"]
    threshold = float(merged.get("endOfTurnConfidenceThreshold", threshold))
    silence_ms = merged.get("minEndOfTurnSilenceWhenConfident", detection.get("silence_duration_ms"))
    idle_ms = detection.get("idle_timeout_ms")
    if merged.get("inactivityTimeoutSeconds") is not None:
        idle_ms = int(float(merged["inactivityTimeoutSeconds"]) * 1000)
    return TurnSettings(
        mode=mode,
        vad_confidence=float(merged.get("vadThreshold", detection.get("threshold") or 0.5)),
        vad_stop_secs=(float(silence_ms) / 1000) if silence_ms is not None else 0.2,
        end_of_turn_threshold=threshold,
        max_wait_secs=max_wait,
        create_response=detection.get("create_response", True) is not False,
        interrupt_response=detection.get("interrupt_response", True) is not False,
        idle_timeout_ms=int(idle_ms) if idle_ms else None,
    )


def new_session_id() -> str:
    return new_id("sess")
