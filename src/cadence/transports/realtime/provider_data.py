"""Checks of the session's ``providerData`` parts and of its voice, and what the echo shows of them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cadence.transports.realtime.protocol import ProtocolError, error_param
from cadence.voice.catalog import VoiceCatalog


def check_voice(name: str | None, catalog: VoiceCatalog, language: str | None = None,
                param: str = "session.audio.output.voice") -> None:
    """ProtocolError naming ``audio.output.voice`` for a name the catalog lacks (the whole
    ``session.update`` is refused, so nothing in it is applied half-way; the client resends),
    or for a voice that does not speak the transcription's ``language`` (it would read the
    replies in that language as gibberish)."""
    voice = catalog.resolve(name) if name is not None else None
    if voice is not None and language and voice.language and voice.language != language.split("-")[0].lower():
        fitting = [v for v in catalog.names() if catalog.resolve(v).language == language.split("-")[0].lower()]
        raise ProtocolError(
            "invalid_value", f"voice {name!r} speaks {voice.language!r} but the transcription language is"
            f" {language!r}: replies would be read as gibberish; voices for {language!r}:"
            f" {', '.join(fitting) or 'none in this config (add one under voices:)'}", param=param)
    if name is None or voice is not None:
        return
    names = catalog.names()
    listed = ", ".join(names) if names else "none (this pipeline has no tts stage)"
    hint = " (and the stock OpenAI and Inworld names that alias onto them: GET /v1/voices)" if names else ""
    raise ProtocolError("invalid_value", f"voice {name!r} is not available; voices: {listed}{hint}",
                        param=param)


class TTSData(BaseModel):
    """``providerData.tts``: how replies are delivered (session-wide, or per ``response.create``)."""

    model_config = ConfigDict(extra="forbid")

    deliveryMode: Literal["STABLE", "BALANCED", "CREATIVE"] | None = None
    steering: str | None = Field(None, max_length=200)
    sentiment: bool = True


def check_tts(tts: Any, where: str = "session") -> TTSData:
    """The validated ``providerData.tts`` (an empty one for None); ProtocolError naming the field."""
    if tts is None:
        return TTSData()
    if not isinstance(tts, dict):
        raise ProtocolError("invalid_value", "providerData.tts must be an object", param=f"{where}.providerData.tts")
    try:
        return TTSData.model_validate(tts)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        param = error_param(error["loc"], (where, "providerData", "tts"))
        raise ProtocolError("invalid_value", f"{param}: {error['msg']} (fields: {', '.join(TTSData.model_fields)})",
                            param=param) from exc


class MemoryData(BaseModel):
    """``providerData.memory``: who the user is and how their memory is kept (``state`` is
    reported by the server and ignored when a client sends it back)."""

    model_config = ConfigDict(extra="forbid")

    user: str | None = Field(None, min_length=1, max_length=256)
    persist: bool | None = None
    auto_summarize: bool | None = None
    extract_facts: bool | None = None
    relevant_facts: int | None = Field(None, ge=0, le=20)


def check_memory(provider_data: dict[str, Any]) -> None:
    memory = provider_data.get("memory")
    if memory is None:
        return
    if not isinstance(memory, dict):
        raise ProtocolError("invalid_value", "providerData.memory must be an object",
                            param="session.providerData.memory")
    memory.pop("state", None)
    try:
        MemoryData.model_validate(memory)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        param = error_param(error["loc"], ("session", "providerData", "memory"))
        raise ProtocolError("invalid_value", f"{param}: {error['msg']} (fields: {', '.join(MemoryData.model_fields)})",
                            param=param) from exc


def check_flags(provider_data: dict[str, Any]) -> None:
    """``providerData.turn_latency`` (send ``cadence.turn.latency`` events) is true or false."""
    value = provider_data.get("turn_latency")
    if value is not None and not isinstance(value, bool):
        raise ProtocolError("invalid_value", f"providerData.turn_latency must be true or false, got {value!r}",
                            param="session.providerData.turn_latency")


def check_card(card: Any) -> None:
    from cadence.memory.cards import CardError, parse_card

    if card is None:
        return
    try:
        parse_card(card)
    except CardError as exc:
        raise ProtocolError("invalid_value", f"providerData.character: {exc}",
                            param="session.providerData.character") from exc


def card_greeting(card: Any) -> str | None:
    from cadence.memory.cards import Character

    return Character(card).greeting()
