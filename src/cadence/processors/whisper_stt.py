"""WhisperSTTService on a Whisper model shared by every session of the process."""

from __future__ import annotations

from typing import Any

from pipecat.services.whisper.stt import WhisperSTTService


class SharedWhisperSTTService(WhisperSTTService):
    """WhisperSTTService on a model loaded once per process (pipecat loads one per service)."""

    def __init__(self, *, whisper_model: Any, **kwargs: Any):
        self._shared_model = whisper_model
        super().__init__(**kwargs)

    def _load(self) -> None:
        self._model = self._shared_model
        unsupported = self._unsupported_language()
        if unsupported:
            raise ValueError(unsupported)
