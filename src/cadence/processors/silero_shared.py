"""Silero VAD on an ONNX session shared by every session of the process.

pipecat's ``SileroVADAnalyzer`` loads the model for each analyzer (~11 MB and ~30 ms per
session, measured here). The recurrent state lives in ``SileroOnnxModel``, not in the
``InferenceSession`` (whose ``run`` is thread-safe), so each analyzer keeps its own state
on one shared session.

pipecat's VAD counts a frame as speech only once its loudness window holds
``VOLUME_WINDOW_SECS`` of audio (the volume reads 0 before), so a user who speaks the moment
a session opens was not heard for half a second ("Can you tell me" became a 0.08 s segment,
or none). The window starts full of silence instead, as if the session had been quiet.
"""

from __future__ import annotations

from typing import Any

from pipecat.audio.vad.silero import SileroOnnxModel, SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADAnalyzer, VADParams, VADState
from pipecat.audio.volume import VOLUME_WINDOW_SECS


class SharedSileroVADAnalyzer(SileroVADAnalyzer):
    """SileroVADAnalyzer whose ONNX session is handed in instead of loaded."""

    def __init__(self, *, session: Any, params: VADParams | None = None):
        # Skip SileroVADAnalyzer.__init__: it would load another copy of the model.
        VADAnalyzer.__init__(self, params=params)
        model = SileroOnnxModel.__new__(SileroOnnxModel)
        model.session = session
        model.sample_rates = [8000, 16000]
        model.reset_states()
        self._model = model
        self._windows_since_reset = 0
        self._low_confidence_windows = 0
        self.state = VADState.QUIET

    def set_sample_rate(self, sample_rate: int):
        super().set_sample_rate(sample_rate)
        self._volume_tracker.update(bytes(2 * int(sample_rate * VOLUME_WINDOW_SECS)), sample_rate)

    async def analyze_audio(self, buffer: bytes) -> VADState:
        """pipecat's analysis, keeping the state it returns: the STT stage reads the moment
        speech turns to silence (``STOPPING``) to start transcribing before the VAD stop."""
        self.state = await super().analyze_audio(buffer)
        return self.state
