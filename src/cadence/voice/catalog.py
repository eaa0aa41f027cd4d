"""The voice catalog: the names a client may ask for, and the local voice each one speaks with.

Clients arrive with their own stock voice names: the openai SDKs and openai-agents default to
OpenAI's (``alloy`` … ``cedar``), LiveKit's plugin to ``marin``, Inworld clients to Inworld's
(``Sarah``, ``Clive``, …). Refusing those would refuse the whole ``session.update`` they come
in, so every stock name is an alias of a local voice: one of the same gender where the
catalog has one, else the pipeline's own voice. The catalog holds the ``tts`` stage's voice,
the YAML's ``voices:`` entries (a name → an engine voice with its own prosody) and the aliases;
names match without regard to case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePath
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from cadence.stages import Spec

Gender = Literal["female", "male", "neutral"]

# OpenAI's Realtime voices and Inworld's public voice list, with the gender they are heard as.
OPENAI_VOICES: dict[str, Gender] = {
    "alloy": "neutral", "ash": "male", "ballad": "male", "coral": "female", "echo": "male", "fable": "male",
    "onyx": "male", "nova": "female", "sage": "female", "shimmer": "female", "verse": "male", "marin": "female",
    "cedar": "male",
}
INWORLD_VOICES: dict[str, Gender] = {
    "Ashley": "female", "Alex": "male", "Clive": "male", "Craig": "male", "Deborah": "female", "Dennis": "male",
    "Dominus": "male", "Edward": "male", "Elizabeth": "female", "Hades": "male", "Hana": "female",
    "Julia": "female", "Luna": "female", "Mark": "male", "Olivia": "female", "Pixie": "female", "Priya": "female",
    "Ronald": "male", "Sarah": "female", "Shaun": "male", "Theodore": "male", "Timothy": "male", "Wendy": "female",
}
# The packaged voices Cadence knows the gender of (a voice path or another name: unknown).
PACKAGED_GENDERS: dict[str, Gender] = {"en_US-joe-medium": "male"}


class VoiceEntry(Spec):
    """One entry of the YAML's ``voices:`` section: a name clients may ask for."""

    engine: Literal["piper", "openai"] = Field(
        "piper", description="piper: a local Piper voice; openai: a voice of an OpenAI-compatible speech API"
        " (OpenAI, a vLLM or Kokoro server, another Cadence) at base_url.")
    voice: str = Field(description="The engine voice it speaks with: a packaged Piper voice or a .onnx path;"
                       " for engine openai, the provider's voice name (e.g. alloy).")
    base_url: str = Field("https://api.openai.com/v1", description="engine openai: the API's base URL, with /v1.")
    api_key: SecretStr | None = Field(None, description="engine openai: its key; write it as ${VAR}.")
    model: str = Field("gpt-4o-mini-tts", description="engine openai: the speech model.")
    send_instructions: bool = Field(
        True, description="engine openai: send the delivery (tags, steering) as instructions; off for models"
        " that refuse them (tts-1).")
    timeout_s: float = Field(30.0, gt=0, le=300, description="engine openai: one sentence's request timeout.")
    gender: Gender | None = Field(None, description="How it is heard; stock names of that gender alias to it.")
    speed: float = Field(1.0, ge=0.25, le=1.5, description="Speaking rate (multiplies the session's speed).")
    noise_scale: float | None = Field(None, ge=0, le=2, description="Piper expressiveness; null = the voice's own.")
    noise_w_scale: float | None = Field(None, ge=0, le=2, description="Piper phoneme-length variation.")
    volume: float = Field(1.0, gt=0, le=4, description="Output gain.")
    speaker: int | None = Field(None, ge=0, description="Speaker id of a multi-speaker Piper model.")
    language: str | None = Field(None, pattern=r"^[a-z]{2,3}$", description="What it speaks (ISO 639-1, e.g. 'en');"
                                 " null = read from a Piper voice name such as en_US-joe-medium.")
    delivery_mode: Literal["STABLE", "BALANCED", "CREATIVE"] | None = Field(
        None, description="Its delivery mode unless a session sets one; null = the tts stage's.")
    steering: str | None = Field(None, max_length=200, description="A steering line for everything it says.")
    description: str = Field("", max_length=200, description="Shown in GET /v1/voices.")

    @model_validator(mode="after")
    def _engine_fields(self) -> VoiceEntry:
        if self.engine != "piper":
            piper_only = [n for n in ("noise_scale", "noise_w_scale", "speaker") if getattr(self, n) is not None]
            if piper_only:
                raise ValueError(f"{', '.join(piper_only)}: Piper settings; engine {self.engine!r} has none")
        return self


_LOCALE = re.compile(r"^([a-z]{2,3})_[A-Z]{2}-")


def voice_language(entry: VoiceEntry) -> str | None:
    """The language a voice speaks: its entry's, else its Piper name's (``en_US-…`` → ``en``)."""
    if entry.language:
        return entry.language
    match = _LOCALE.match(PurePath(entry.voice).name)
    return match.group(1) if match else None


@dataclass(frozen=True)
class Voice:
    """A name resolved: what speaks when a client asks for ``name``."""

    name: str  # the catalog's own spelling
    entry: VoiceEntry
    alias_of: str | None = None  # for a stock name: the catalog voice it maps onto

    @property
    def engine(self) -> str:
        """piper or openai (an OpenAI-compatible speech API)."""
        return self.entry.engine

    @property
    def language(self) -> str | None:
        """What it speaks (None: unknown, never refused)."""
        return voice_language(self.entry)

    def wire(self) -> dict:
        """How ``providerData.voice`` and ``GET /v1/voices`` show it."""
        return {"name": self.name, "engine": self.engine, "voice": self.entry.voice, "alias_of": self.alias_of,
                "gender": self.entry.gender, "speed": self.entry.speed, "language": self.language,
                "delivery_mode": self.entry.delivery_mode}


class VoiceCatalog:
    """The voices of one config: the tts stage's own, the YAML's entries and the stock aliases."""

    def __init__(self, default_voice: str | None, entries: dict[str, VoiceEntry] | None = None, *,
                 noise_scale: float | None = None, noise_w_scale: float | None = None, volume: float = 1.0,
                 speaker: int | None = None):
        """``default_voice`` (with ``noise_*``): the tts stage's own voice and prosody, which a
        session that names no other keeps (its speed is the session's ``audio.output.speed``)."""
        self._voices: dict[str, Voice] = {}
        if default_voice is not None:
            self._add(Voice(default_voice, VoiceEntry(voice=default_voice, gender=PACKAGED_GENDERS.get(default_voice),
                                                      noise_scale=noise_scale, noise_w_scale=noise_w_scale,
                                                      volume=volume, speaker=speaker)))
        for name, entry in (entries or {}).items():
            self._add(Voice(name, entry))
        self.default = self._voices[default_voice.lower()] if default_voice is not None else None
        self._aliases: dict[str, Voice] = {}
        if self.default is not None:
            for name, gender in {**OPENAI_VOICES, **INWORLD_VOICES}.items():
                if name.lower() not in self._voices:
                    target = self._by_gender(gender)
                    self._aliases[name.lower()] = Voice(name, target.entry, alias_of=target.name)

    def _add(self, voice: Voice) -> None:
        self._voices[voice.name.lower()] = voice

    def _by_gender(self, gender: Gender) -> Voice:
        if self.default is not None and self.default.entry.gender == gender:
            return self.default
        same = [v for v in self._voices.values() if v.entry.gender == gender]
        return same[0] if same else self.default

    def resolve(self, name: str) -> Voice | None:
        """The voice ``name`` speaks with, or None for a name the catalog lacks."""
        key = name.lower()
        return self._voices.get(key) or self._aliases.get(key)

    def names(self) -> list[str]:
        """The catalog's own voices (not the aliases), the default first."""
        return [v.name for v in self._voices.values()]

    def listing(self) -> dict:
        """``GET /v1/voices``: the voices, each with the stock names that map onto it."""
        data = []
        for voice in self._voices.values():
            aliases = sorted(a.name for a in self._aliases.values() if a.alias_of == voice.name)
            data.append({**voice.wire(), "object": "voice", "id": voice.name, "description": voice.entry.description,
                         "default": voice is self.default, "aliases": aliases})
        return {"object": "list", "data": data}


def pipeline_catalog(tts_params: object | None, entries: dict[str, VoiceEntry]) -> VoiceCatalog:
    """The catalog of a config: its ``tts`` stage's params (or None) and its ``voices:`` section."""
    return VoiceCatalog(getattr(tts_params, "voice", None), entries,
                        noise_scale=getattr(tts_params, "noise_scale", None),
                        noise_w_scale=getattr(tts_params, "noise_w_scale", None),
                        volume=getattr(tts_params, "volume", 1.0), speaker=getattr(tts_params, "speaker", None))
