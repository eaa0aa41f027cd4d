"""Piper TTS on a shared voice with prosody settings. Imports ``piper`` (GPL-3.0).

Only ``cadence.processors.tts`` imports this module, and only when a pipeline with a
``tts`` stage is built, so the core package never pulls GPL code in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from piper import PiperVoice
from pipecat.frames.frames import (
    Frame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    TTSSpeakFrame,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.piper.tts import PiperTTSService, PiperTTSSettings
from pipecat.services.tts_service import TTSService
from pipecat.utils.types import NOT_GIVEN, NotGiven

from cadence.frames import DeliveryTagFrame, PrerenderSpeechFrame
from cadence.processors.clause_aggregator import FirstClauseAggregator
from cadence.processors.reply_hold import ReplyHoldMixin
from cadence.voice.delivery import Delivery
from cadence.voice.piper_speech import PiperSpeaker, VoiceSettings


class _Pcm:
    """One piece of audio as pipecat's PiperTTSService reads a Piper chunk."""

    __slots__ = ("audio_int16_bytes",)

    def __init__(self, audio: bytes):
        self.audio_int16_bytes = audio


class _PlannedVoice:
    """What pipecat's PiperTTSService calls ``synthesize(text)`` on: each sentence is spoken
    under the reply's delivery (tags, mode, sentiment), its non-verbals and pause included.

    Wrapping the voice keeps pipecat's streaming code as it is; the plan is made when the
    sentence is handed over, the audio lazily in pipecat's worker thread.
    """

    def __init__(self, speaker: PiperSpeaker, delivery: Delivery):
        self.speaker = speaker
        self.delivery = delivery

    @property
    def config(self) -> Any:
        return self.speaker.config  # pipecat reads the rate here for every sentence: a switch is heard at once

    def synthesize(self, text: str) -> Iterator[_Pcm]:
        plan = self.delivery.plan(text)
        return (_Pcm(audio) for audio in self.speaker.sentence(text, plan))


@dataclass
class ProsodyPiperSettings(PiperTTSSettings):
    """Piper's settings plus the voice's prosody and the session's delivery, updatable with
    a ``TTSUpdateSettingsFrame`` like any pipecat TTS setting."""

    speed: float | NotGiven = field(default_factory=lambda: NOT_GIVEN)
    noise_scale: float | None | NotGiven = field(default_factory=lambda: NOT_GIVEN)
    noise_w_scale: float | None | NotGiven = field(default_factory=lambda: NOT_GIVEN)
    volume: float | NotGiven = field(default_factory=lambda: NOT_GIVEN)
    speaker_id: int | None | NotGiven = field(default_factory=lambda: NOT_GIVEN)
    delivery_mode: str | NotGiven = field(default_factory=lambda: NOT_GIVEN)
    steering: str | None | NotGiven = field(default_factory=lambda: NOT_GIVEN)
    sentiment: bool | NotGiven = field(default_factory=lambda: NOT_GIVEN)
    hosted: Any = field(default_factory=lambda: NOT_GIVEN)  # a catalog VoiceEntry of engine openai; None: Piper


_PROSODY = ("speed", "noise_scale", "noise_w_scale", "volume", "speaker_id")


class SharedPiperTTSService(ReplyHoldMixin, PiperTTSService):
    """PiperTTSService on a voice loaded once per process, with prosody and steered delivery."""

    Settings = ProsodyPiperSettings

    def __init__(self, *, voice: PiperVoice, voice_name: str, speed: float = 1.0, noise_scale: float | None = None,
                 noise_w_scale: float | None = None, volume: float = 1.0, first_clause_words: int = 3,
                 first_phrase_words: int = 0, vad: Any = None, delivery: Delivery | None = None,
                 speaker_id: int | None = None,
                 voice_loader: Callable[[str], PiperVoice] | None = None, **kwargs: Any):
        # Skip PiperTTSService.__init__: it loads (or downloads) a voice per service.
        # (Listed in tests/unit/test_pipecat_canary.py.)
        TTSService.__init__(
            self,
            push_start_frame=True,
            push_stop_frames=True,
            settings=self.Settings(model=None, voice=voice_name, language=None, speed=speed,
                                   noise_scale=noise_scale, noise_w_scale=noise_w_scale, volume=volume,
                                   speaker_id=speaker_id, delivery_mode=(delivery or Delivery()).mode,
                                   steering=(delivery or Delivery()).steering,
                                   sentiment=(delivery or Delivery()).use_sentiment, hosted=None),
            **kwargs,
        )
        self._init_reply_hold(vad)
        self._delivery = delivery or Delivery()
        settings = VoiceSettings(speed=speed, noise_scale=noise_scale, noise_w_scale=noise_w_scale, volume=volume,
                                 speaker_id=speaker_id)
        self._speaker = PiperSpeaker(voice, settings)
        self._voice = _PlannedVoice(self._speaker, self._delivery)
        self._voice_name = voice_name
        self._hosted: dict[int, Any] = {}  # catalog voices of engine openai, one speaker each
        self._voice_loader = voice_loader  # another engine voice, by name (a session's catalog voice)
        # TTSService has no parameter for its aggregator: replace the one it made (same settings).
        self._text_aggregator = FirstClauseAggregator(min_words=first_clause_words, phrase_words=first_phrase_words,
                                                      aggregation_type=self._text_aggregator.aggregation_type,
                                                      language=self._text_aggregator.language)

    @property
    def speed(self) -> float:
        """The speaking rate in use (1.0 = the voice's own)."""
        return self._speaker.settings.speed

    @property
    def delivery(self) -> Delivery:
        """The session's delivery state (mode, steering line, the reply's tags)."""
        return self._delivery

    async def render_phrase(self, text: str) -> tuple[bytes, int]:
        """A short phrase's whole audio (16-bit PCM) and its sample rate, off the pipeline
        (backchannels: played as they are, never through this service's frames)."""
        speaker = self._voice.speaker
        audio = await asyncio.to_thread(lambda: b"".join(speaker.speak(text)))
        return audio, speaker.sample_rate

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        if isinstance(frame, PrerenderSpeechFrame):
            texts = list(frame.texts)
            self.create_task(asyncio.to_thread(self._speaker.prerender, texts), f"{self}::prerender")
            return
        if isinstance(frame, DeliveryTagFrame):
            await self._speak_pending()  # the words before the tag keep the delivery they had
            self._delivery.apply(frame.tag)
            return
        if isinstance(frame, (LLMFullResponseStartFrame, InterruptionFrame, TTSSpeakFrame)):
            self._delivery.begin_reply()  # a filler or greeting never inherits the last reply's tags
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMFullResponseEndFrame):
            self._delivery.begin_reply()  # a tag after the reply's last words has nothing to act on

    async def _speak_pending(self) -> None:
        # pipecat's TTSService flushes its aggregator only at a reply's end; a tag mid-sentence
        # needs the same flush (its _handle_llm_response_end does exactly this).
        remaining = await self._text_aggregator.flush()
        if remaining:
            await self._handle_aggregated_text(self._aggregated_text_frame(remaining))

    async def _update_settings(self, delta: Any) -> dict[str, Any]:
        changed = await super()._update_settings(delta)
        voice = getattr(delta, "voice", NOT_GIVEN)
        hosted = getattr(delta, "hosted", NOT_GIVEN)
        if isinstance(voice, str) and voice != self._voice_name and not hosted:
            if self._voice_loader is None:
                raise ValueError(f"this TTS cannot change its voice to {voice!r}")
            self._speaker.voice = await asyncio.to_thread(self._voice_loader, voice)  # loaded once per process
            self._voice_name = voice
        if not isinstance(hosted, NotGiven):
            self._voice.speaker = self._speaker if hosted is None else self._hosted_speaker(hosted)
        for name in _PROSODY:
            value = getattr(delta, name, NOT_GIVEN)
            if not isinstance(value, NotGiven):
                setattr(self._speaker.settings, name, value)
        speed = getattr(delta, "speed", NOT_GIVEN)
        if self._voice.speaker is not self._speaker and not isinstance(speed, NotGiven):
            self._voice.speaker.speed = speed  # the session's audio.output.speed times the voice's
        mode, steering, sentiment = (getattr(delta, n, NOT_GIVEN) for n in ("delivery_mode", "steering", "sentiment"))
        self._delivery.configure(mode=None if isinstance(mode, NotGiven) else mode,
                                 steering=False if isinstance(steering, NotGiven) else steering,
                                 use_sentiment=None if isinstance(sentiment, NotGiven) else sentiment)
        return changed

    async def cleanup(self):
        await super().cleanup()
        for speaker in self._hosted.values():  # their HTTP connection pools
            speaker.close()

    def _hosted_speaker(self, entry: Any) -> Any:
        from cadence.voice.hosted_speech import HostedSpeaker

        key = id(entry)  # the catalog's entries live as long as the config: bounded by it
        if key not in self._hosted:
            self._hosted[key] = HostedSpeaker(entry)
        return self._hosted[key]
