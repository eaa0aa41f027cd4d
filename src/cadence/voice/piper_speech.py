"""Speaking with a Piper voice under a delivery plan. Imports ``piper`` (GPL-3.0).

Imported only where a Piper voice is used (the ``tts`` stage and the speech routes, both
lazily), so the core package never pulls GPL code in. One ``PiperSpeaker`` is a voice plus
its per-voice defaults; ``sentence`` renders one sentence with the sounds around it, as a
realtime reply and a REST request both need.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import astuple, dataclass
from typing import Any

from piper import PiperVoice, SynthesisConfig

from cadence.voice import sounds
from cadence.voice.delivery import Prosody, SentencePlan

SHORT_PHRASE_CHARS = 48  # phrases this short (fillers, backchannels) are kept once synthesized
_PHRASES: OrderedDict[tuple, list[bytes]] = OrderedDict()  # process-wide, bounded (LRU)
_PHRASES_MAX = 128
_PHRASES_LOCK = threading.Lock()


@dataclass
class VoiceSettings:
    """A voice's own defaults: what prosody multipliers multiply (None = the voice file's)."""

    speed: float = 1.0
    noise_scale: float | None = None
    noise_w_scale: float | None = None
    volume: float = 1.0
    speaker_id: int | None = None


class PiperSpeaker:
    """One Piper voice with its defaults; blocking calls (run them off the event loop)."""

    def __init__(self, voice: PiperVoice, settings: VoiceSettings | None = None):
        self.voice = voice
        self.settings = settings or VoiceSettings()

    @property
    def config(self) -> Any:
        """The voice file's config (pipecat's PiperTTSService reads its sample_rate)."""
        return self.voice.config

    @property
    def sample_rate(self) -> int:
        """The voice's own rate (22,050 Hz for the packaged voice)."""
        return int(self.voice.config.sample_rate)

    def synthesis_config(self, prosody: Prosody = Prosody()) -> SynthesisConfig:
        """Piper's config for this voice's defaults times ``prosody``."""
        s, own = self.settings, self.voice.config
        noise = s.noise_scale if s.noise_scale is not None else own.noise_scale
        noise_w = s.noise_w_scale if s.noise_w_scale is not None else own.noise_w_scale
        return SynthesisConfig(
            speaker_id=s.speaker_id, length_scale=(own.length_scale or 1.0) / (s.speed * prosody.speed),
            noise_scale=min(2.0, noise * prosody.noise), noise_w_scale=min(2.0, noise_w * prosody.noise_w),
            volume=min(4.0, s.volume * prosody.volume))

    def speak(self, text: str, prosody: Prosody = Prosody()) -> Iterator[bytes]:
        """16-bit PCM of ``text``, a Piper sentence at a time (short phrases cached)."""
        config = self.synthesis_config(prosody)
        if len(text) > SHORT_PHRASE_CHARS:
            for chunk in self.voice.synthesize(text, config):
                yield chunk.audio_int16_bytes
            return
        key = (id(self.voice), astuple(config), text)
        with _PHRASES_LOCK:
            cached = _PHRASES.get(key)
            if cached is not None:
                _PHRASES.move_to_end(key)
        if cached is None:
            cached = [chunk.audio_int16_bytes for chunk in self.voice.synthesize(text, config)]
            with _PHRASES_LOCK:
                _PHRASES[key] = cached
                while len(_PHRASES) > _PHRASES_MAX:
                    _PHRASES.popitem(last=False)
        yield from cached

    def fallback(self, fallback: str, prosody: Prosody = Prosody()) -> bytes:
        """The audio of a non-verbal's fallback (``say:``, ``sound:`` or ``pause:``)."""
        return sounds.fallback_audio(fallback, self.sample_rate,
                                     lambda words: b"".join(self.speak(words, prosody.times(Prosody(volume=0.8)))))

    def say(self, text: str, plan: SentencePlan) -> Iterator[bytes]:
        """``text``'s words under ``plan``'s prosody."""
        return self.speak(text, plan.prosody)

    def sentence(self, text: str, plan: SentencePlan) -> Iterator[bytes]:
        """A sentence under ``plan``: its non-verbals first, then its words, then its pause."""
        return sounds.sentence(self, text, plan)

    def prerender(self, texts: list[str]) -> None:
        """Synthesize short ``texts`` into the phrase cache now."""
        for text in texts:
            if len(text) <= SHORT_PHRASE_CHARS:
                for _ in self.speak(text):
                    pass


def voice_settings(entry: Any) -> VoiceSettings:
    """The defaults of a catalog entry (``VoiceEntry``) or the tts stage's params."""
    return VoiceSettings(speed=getattr(entry, "speed", 1.0), noise_scale=getattr(entry, "noise_scale", None),
                         noise_w_scale=getattr(entry, "noise_w_scale", None), volume=getattr(entry, "volume", 1.0),
                         speaker_id=getattr(entry, "speaker", None))
