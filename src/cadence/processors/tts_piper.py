"""Piper TTS on a shared voice with prosody settings. Imports ``piper`` (GPL-3.0).

Only ``cadence.processors.tts`` imports this module, and only when a pipeline with a
``tts`` stage is built, so the core package never pulls GPL code in.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import astuple, dataclass, field
from typing import Any

from piper import PiperVoice, SynthesisConfig
from pipecat.frames.frames import Frame
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.piper.tts import PiperTTSService, PiperTTSSettings
from pipecat.services.tts_service import TTSService
from pipecat.utils.types import NOT_GIVEN, NotGiven

from cadence.frames import PrerenderSpeechFrame
from cadence.processors.clause_aggregator import FirstClauseAggregator
from cadence.processors.reply_hold import ReplyHoldMixin

SHORT_PHRASE_CHARS = 48  # phrases this short (fillers, backchannels) are kept once synthesized
_PHRASES: OrderedDict[tuple, list[Any]] = OrderedDict()  # process-wide, bounded (LRU)
_PHRASES_MAX = 128
_PHRASES_LOCK = threading.Lock()


class _ProsodyVoice:
    """A PiperVoice whose ``synthesize`` applies a fixed SynthesisConfig.

    pipecat's PiperTTSService calls ``synthesize(text)`` with no SynthesisConfig; wrapping
    the voice keeps pipecat's streaming code as it is while adding speed and expression.
    """

    def __init__(self, voice: PiperVoice, syn_config: SynthesisConfig):
        self._voice = voice
        self.syn_config = syn_config

    @property
    def config(self) -> Any:
        return self._voice.config

    def synthesize(self, text: str, syn_config: SynthesisConfig | None = None, **kwargs: Any) -> Any:
        config = syn_config or self.syn_config
        if len(text) > SHORT_PHRASE_CHARS or kwargs:
            return self._voice.synthesize(text, config, **kwargs)
        key = (id(self._voice), astuple(config), text)
        with _PHRASES_LOCK:
            chunks = _PHRASES.get(key)
            if chunks is not None:
                _PHRASES.move_to_end(key)
                return iter(chunks)
        chunks = list(self._voice.synthesize(text, config))
        with _PHRASES_LOCK:
            _PHRASES[key] = chunks
            while len(_PHRASES) > _PHRASES_MAX:
                _PHRASES.popitem(last=False)
        return iter(chunks)

    def prerender(self, texts: list[str]) -> None:
        """Synthesize short ``texts`` into the phrase cache now (blocking: run off the loop)."""
        for text in texts:
            if len(text) <= SHORT_PHRASE_CHARS:
                for _ in self.synthesize(text):
                    pass


@dataclass
class ProsodyPiperSettings(PiperTTSSettings):
    """Piper's settings plus ``speed`` (1.0 = the voice's own), updatable with a
    ``TTSUpdateSettingsFrame`` like any pipecat TTS setting."""

    speed: float | NotGiven = field(default_factory=lambda: NOT_GIVEN)
    noise_scale: float | None | NotGiven = field(default_factory=lambda: NOT_GIVEN)
    noise_w_scale: float | None | NotGiven = field(default_factory=lambda: NOT_GIVEN)


class SharedPiperTTSService(ReplyHoldMixin, PiperTTSService):
    """PiperTTSService on a voice loaded once per process, with speed/noise/volume settings."""

    Settings = ProsodyPiperSettings

    def __init__(self, *, voice: PiperVoice, voice_name: str, speed: float = 1.0, noise_scale: float | None = None,
                 noise_w_scale: float | None = None, volume: float = 1.0, first_clause_words: int = 3,
                 first_phrase_words: int = 0, vad: Any = None,
                 voice_loader: Callable[[str], PiperVoice] | None = None, **kwargs: Any):
        # Skip PiperTTSService.__init__: it loads (or downloads) a voice per service.
        # (Listed in tests/unit/test_pipecat_canary.py.)
        TTSService.__init__(
            self,
            push_start_frame=True,
            push_stop_frames=True,
            settings=self.Settings(model=None, voice=voice_name, language=None, speed=speed,
                                   noise_scale=noise_scale, noise_w_scale=noise_w_scale),
            **kwargs,
        )
        self._init_reply_hold(vad)
        syn_config = SynthesisConfig(length_scale=1.0 / speed, noise_scale=noise_scale,
                                     noise_w_scale=noise_w_scale, volume=volume)
        self._voice = _ProsodyVoice(voice, syn_config)
        self._voice_name = voice_name
        self._voice_loader = voice_loader  # another engine voice, by name (a session's catalog voice)
        # TTSService has no parameter for its aggregator: replace the one it made (same settings).
        self._text_aggregator = FirstClauseAggregator(min_words=first_clause_words, phrase_words=first_phrase_words,
                                                      aggregation_type=self._text_aggregator.aggregation_type,
                                                      language=self._text_aggregator.language)

    @property
    def speed(self) -> float:
        """The speaking rate in use (1.0 = the voice's own)."""
        return 1.0 / (self._voice.syn_config.length_scale or 1.0)

    async def render_phrase(self, text: str) -> tuple[bytes, int]:
        """A short phrase's whole audio (16-bit PCM) and its sample rate, off the pipeline
        (backchannels: played as they are, never through this service's frames)."""
        chunks = await asyncio.to_thread(lambda: list(self._voice.synthesize(text)))
        return b"".join(c.audio_int16_bytes for c in chunks), self._voice.config.sample_rate

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        if isinstance(frame, PrerenderSpeechFrame):
            texts = list(frame.texts)
            self.create_task(asyncio.to_thread(self._voice.prerender, texts), f"{self}::prerender")
            return
        await super().process_frame(frame, direction)

    async def _update_settings(self, delta: Any) -> dict[str, Any]:
        changed = await super()._update_settings(delta)
        syn_config = self._voice.syn_config
        speed = getattr(delta, "speed", NOT_GIVEN)
        if not isinstance(speed, NotGiven):
            syn_config.length_scale = 1.0 / float(speed)
        for name in ("noise_scale", "noise_w_scale"):
            value = getattr(delta, name, NOT_GIVEN)
            if not isinstance(value, NotGiven):
                setattr(syn_config, name, value)
        voice = getattr(delta, "voice", NOT_GIVEN)
        if isinstance(voice, str) and voice != self._voice_name:
            if self._voice_loader is None:
                raise ValueError(f"this TTS cannot change its voice to {voice!r}")
            loaded = await asyncio.to_thread(self._voice_loader, voice)  # loaded once per process
            self._voice, self._voice_name = _ProsodyVoice(loaded, syn_config), voice
        return changed
