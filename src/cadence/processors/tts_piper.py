"""Piper TTS on a shared voice with prosody settings. Imports ``piper`` (GPL-3.0).

Only ``cadence.processors.tts`` imports this module, and only when a pipeline with a
``tts`` stage is built, so the core package never pulls GPL code in.
"""

from __future__ import annotations

from typing import Any

from piper import PiperVoice, SynthesisConfig
from pipecat.services.piper.tts import PiperTTSService
from pipecat.services.tts_service import TTSService

from cadence.processors.tts import TTSParams


class _ProsodyVoice:
    """A PiperVoice whose ``synthesize`` applies a fixed SynthesisConfig.

    pipecat's PiperTTSService calls ``synthesize(text)`` with no SynthesisConfig; wrapping
    the voice keeps pipecat's streaming code as it is while adding speed and expression.
    """

    def __init__(self, voice: PiperVoice, syn_config: SynthesisConfig):
        self._voice = voice
        self._syn_config = syn_config

    @property
    def config(self) -> Any:
        return self._voice.config

    def synthesize(self, text: str, syn_config: SynthesisConfig | None = None, **kwargs: Any) -> Any:
        return self._voice.synthesize(text, syn_config or self._syn_config, **kwargs)


class SharedPiperTTSService(PiperTTSService):
    """PiperTTSService on a voice loaded once per process, with speed/noise/volume settings."""

    def __init__(self, *, voice: PiperVoice, params: TTSParams, **kwargs: Any):
        # Skip PiperTTSService.__init__: it loads (or downloads) a voice per service.
        TTSService.__init__(
            self,
            push_start_frame=True,
            push_stop_frames=True,
            settings=self.Settings(model=None, voice=str(params.voice), language=None),
            **kwargs,
        )
        syn_config = SynthesisConfig(
            length_scale=1.0 / params.speed,
            noise_scale=params.noise_scale,
            noise_w_scale=params.noise_w_scale,
            volume=params.volume,
        )
        self._voice = _ProsodyVoice(voice, syn_config)

    def set_speed(self, speed: float) -> None:
        """Change the speaking rate (1.0 = the voice's own) from the next sentence on."""
        self._voice._syn_config.length_scale = 1.0 / speed
