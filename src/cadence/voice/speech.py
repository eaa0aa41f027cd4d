"""Speech outside a realtime session: a catalog voice speaks a text, a clause at a time.

The REST routes (Inworld's and OpenAI's shapes) call ``SpeechService.pcm``: it resolves the
voice (aliases included), builds its speaker once per voice (Piper, whose GPL engine is
imported only here, lazily, or a hosted OpenAI-compatible API: voice/hosted_speech.py), and yields 16-bit PCM pieces as each is synthesized, the first
one after the first clause, so a streaming client hears audio before the whole text is done.
Tags in the text are performed as in a session (``voice/delivery.py``), never spoken.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from typing import Any

from cadence.voice.catalog import Voice, VoiceCatalog
from cadence.voice.delivery import Delivery, DeliveryMode
from cadence.voice.tags import TagParser

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_FIRST_CLAUSE = re.compile(r"(?<=[,;:\u2014])\s+")


class SpeechError(ValueError):
    """A request the service cannot speak; ``param`` names the field at fault."""

    def __init__(self, message: str, param: str):
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class SpeechRequest:
    """What to say and how (already checked by the route)."""

    text: str
    voice: Voice
    mode: DeliveryMode | None = None
    steering: str | None = None
    speed: float = 1.0
    expressiveness: float = 1.0  # Inworld's temperature, relative to its default


def pieces(text: str) -> Iterator[tuple[str, Any]]:
    """("text", words) and ("tag", Tag) in order; the first words are cut at a clause, the rest at sentences."""
    parser = TagParser()
    first = True
    for segment in parser.feed(text) + parser.end():
        if segment.tag is not None:
            yield "tag", segment.tag
            continue
        for sentence in _SENTENCE_END.split(segment.text):
            if not sentence.strip():
                continue
            if first and len(sentence.split()) > 6:
                parts = _FIRST_CLAUSE.split(sentence, maxsplit=1)
                yield from (("text", part) for part in parts if part.strip())
            else:
                yield "text", sentence
            first = False


def speakable(text: str) -> bool:
    """Whether ``text`` has anything to say once its tags are taken out: a word, or a non-verbal."""
    return any((kind == "text" and any(c.isalnum() for c in value)) or (kind == "tag" and value.kind == "nonverbal")
               for kind, value in pieces(text))


class SpeechService:
    """Speaks with the config's catalog voices (Piper or a hosted speech API), for the REST routes."""

    def __init__(self, catalog: VoiceCatalog, voice_loader: Any, default_mode: DeliveryMode = "BALANCED"):
        self.catalog = catalog
        self._load = voice_loader  # ModelStore.piper_voice: each voice file loads once per process
        self.default_mode = default_mode
        self._speakers: dict[str, Any] = {}  # bounded by the catalog's voices

    def voice(self, name: str | None, param: str) -> Voice:
        """The catalog voice ``name`` (the default for None); SpeechError naming ``param``."""
        voice = self.catalog.resolve(name) if name else self.catalog.default
        if voice is None:
            listed = ", ".join(self.catalog.names()) or "none (this config has no tts stage)"
            raise SpeechError(f"voice {name!r} is not available; voices: {listed} (and the stock OpenAI and"
                              " Inworld names that alias onto them: GET /v1/voices)", param)
        return voice

    def _speaker(self, voice: Voice) -> Any:
        key = voice.alias_of or voice.name
        if key not in self._speakers:
            if voice.engine == "openai":
                from cadence.voice.hosted_speech import HostedSpeaker

                self._speakers[key] = HostedSpeaker(voice.entry)
            else:
                from cadence.voice.piper_speech import PiperSpeaker, voice_settings

                self._speakers[key] = PiperSpeaker(self._load(voice.entry.voice), voice_settings(voice.entry))
        return self._speakers[key]

    async def sample_rate(self, voice: Voice) -> int:
        """The rate ``pcm`` yields for ``voice``."""
        return (await asyncio.to_thread(self._speaker, voice)).sample_rate

    async def pcm(self, request: SpeechRequest) -> AsyncIterator[bytes]:
        """16-bit mono PCM at ``sample_rate(voice)``, a clause or sentence at a time."""
        from cadence.voice.delivery import Prosody

        speaker = await asyncio.to_thread(self._speaker, request.voice)
        delivery = Delivery(request.mode or request.voice.entry.delivery_mode or self.default_mode,
                            request.steering or request.voice.entry.steering)
        base = Prosody(speed=request.speed, noise=request.expressiveness)
        for kind, value in pieces(request.text):
            if kind == "tag":
                delivery.apply(value)
                continue
            plan = delivery.plan(value)
            plan = replace(plan, prosody=plan.prosody.times(base))
            audio = await asyncio.to_thread(lambda: b"".join(speaker.sentence(value, plan)))
            yield audio
        tail = delivery.plan("")
        if tail.before:
            yield await asyncio.to_thread(lambda: b"".join(speaker.sentence("", replace(tail, pause_s=0.0))))
