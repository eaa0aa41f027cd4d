"""The VAD hears a user who speaks the moment a session opens (real Silero, real Piper speech)."""

from __future__ import annotations

import numpy as np
import soxr
from pipecat.audio.vad.vad_analyzer import VADParams, VADState

from cadence.processors.silero_shared import SharedSileroVADAnalyzer


async def test_speech_at_the_first_instant_is_heard_as_soon_as_later_speech(store):
    voice = store.piper_voice("en_US-joe-medium")
    speech = np.concatenate([c.audio_float_array for c in voice.synthesize("Can you tell me a story?")])
    speech = soxr.resample(speech, voice.config.sample_rate, 16000)
    speech = speech[np.flatnonzero(np.abs(speech) > 0.01)[0]:]  # speech from the first sample

    async def onset_to_speaking(lead_secs: float) -> float:
        analyzer = SharedSileroVADAnalyzer(session=store.silero_session(), params=VADParams(
            confidence=0.7, start_secs=0.2, stop_secs=0.2, min_volume=0.6))
        analyzer.set_sample_rate(16000)
        audio = np.concatenate([np.zeros(int(16000 * lead_secs), np.float32), speech])
        pcm = (audio * 32767).astype(np.int16).tobytes()
        for i in range(0, len(pcm), 640):
            if await analyzer.analyze_audio(pcm[i:i + 640]) == VADState.SPEAKING:
                return (i + 640) / 2 / 16000 - lead_secs
        raise AssertionError("never heard as speech")

    at_once, after_silence = await onset_to_speaking(0.0), await onset_to_speaking(1.0)
    assert at_once < 0.45 and abs(at_once - after_silence) < 0.1, (at_once, after_silence)
