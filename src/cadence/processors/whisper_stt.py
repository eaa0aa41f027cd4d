"""WhisperSTTService on a Whisper model shared by every session of the process, decoding
a short utterance on a short encoder window.

Whisper's encoder always reads 30 s of audio (faster-whisper pads every clip to 3,000 mel
frames), which is ~260 of the ~370 ms tiny.en spends on a 3 s utterance on 2 cores.
CTranslate2 accepts a shorter window: padded to 15 s instead, a 3 s utterance takes ~150 ms
with as many wrong transcripts as the 30 s path on our spoken set (9 of 32 each, 3 differ;
``python benchmarks/stt_window.py``); at 10 s short words start repeating ("Right. Right."). A transcript that
looks repetitive (gzip ratio, as faster-whisper's own fallback checks) is redone on the
full window.

The STT stage also starts transcribing when the VAD sees speech turn to silence, instead of
``stop_secs`` later at its stop: when the stop comes and no speech came in between, the
transcript is ready or nearly so.

With ``eager_end_of_turn`` each transcript is first pushed as pipecat's eager end of turn
(``EagerTranscriptionFrame``): the context stage's ``EagerUserTurnStopStrategy`` starts the
reply on it while the turn stage is still deciding, the LLM's speculation gate holds the
reply until the turn ends, and speech resuming withdraws it (``EagerEndOfTurnCancelFrame``).
"""

from __future__ import annotations

import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from loguru import logger
from pipecat.audio.vad.vad_analyzer import VADState
from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    TranscriptionFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.whisper.stt import WhisperSTTService
from pipecat.turns.eager_end_of_turn_mixin import EagerEndOfTurnSTTServiceMixin
from pipecat.utils.types import assert_given

SAMPLE_RATE = 16000
MAX_UNHEARD_BYTES = 8 * SAMPLE_RATE * 2  # at most 8 s of unrecognised audio is heard again
FRAMES_PER_SEC = 100  # Whisper's mel frames (10 ms hop)
FULL_WINDOW_SECS = 30.0
MAX_COMPRESSION_RATIO = 2.4  # faster-whisper's compression_ratio_threshold
# Early transcriptions of every session of the process (each session has at most one running).
_EARLY = ThreadPoolExecutor(max_workers=4, thread_name_prefix="whisper-early")


def pcm_to_float(pcm: bytes) -> np.ndarray:
    """16-bit PCM to float32 exactly as pipecat's WhisperSTTService converts it."""
    return np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0


@dataclass
class Segment:
    """The fields of faster-whisper's ``Segment`` that pipecat's WhisperSTTService reads."""

    text: str
    no_speech_prob: float


def compression_ratio(text: str) -> float:
    """How well ``text`` compresses: high for repetition loops."""
    data = text.encode()
    return len(data) / max(1, len(zlib.compress(data)))


class ShortWindowWhisper:
    """A faster-whisper ``WhisperModel`` whose ``transcribe`` decodes greedily, without
    timestamps, on an encoder window of ``window_secs`` (or the clip's length, if longer).

    pipecat's WhisperSTTService calls ``transcribe`` with faster-whisper's defaults (beam
    search of 5, timestamps, the 30 s window). ``window_secs`` of 0 or 30 keeps
    faster-whisper's own path (with greedy decoding); so do hotwords, which only that path reads.
    """

    def __init__(self, model: Any, *, window_secs: float = 15.0, beam_size: int = 1):
        self._model = model
        self.window_secs = window_secs
        self.beam_size = beam_size
        self._early: tuple[np.ndarray, dict[str, Any], Future] | None = None

    def prefetch(self, audio: np.ndarray, **options: Any) -> None:
        """Start transcribing ``audio`` in the background; a ``transcribe`` of the same
        samples with the same options then returns that result. One is kept (the latest)."""
        self._early = (audio, options, _EARLY.submit(self._transcribe, audio, **options))
        self._early[2].add_done_callback(lambda f: logger.debug("whisper: early transcript ready"))
        logger.debug(f"whisper: early transcript started ({len(audio)} samples)")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def transcribe(self, audio: np.ndarray, *, language: str | None = None, hotwords: str | None = None,
                   initial_prompt: str | None = None, **_: Any) -> tuple[list[Segment], None]:
        """Transcribe float32 mono 16 kHz ``audio``; returns (segments, None)."""
        options = {"language": language, "hotwords": hotwords, "initial_prompt": initial_prompt}
        early, self._early = self._early, None
        if early is not None and early[1] == options and np.array_equal(early[0], audio):
            logger.debug(f"whisper: early transcript used (ready: {early[2].done()})")
            return early[2].result()
        if early is not None:
            logger.debug(f"whisper: early transcript discarded ({len(early[0])} vs {len(audio)} samples)")
        return self._transcribe(audio, **options)

    def _transcribe(self, audio: np.ndarray, *, language: str | None = None, hotwords: str | None = None,
                    initial_prompt: str | None = None) -> tuple[list[Segment], None]:
        secs = len(audio) / SAMPLE_RATE
        if not hotwords and 0 < self.window_secs < FULL_WINDOW_SECS and secs < self.window_secs - 0.5:
            segment = self._decode(audio, language, initial_prompt, self.window_secs)
            if compression_ratio(segment.text) <= MAX_COMPRESSION_RATIO:
                return [segment], None
        segments, _ = self._model.transcribe(
            audio, language=language, hotwords=hotwords, initial_prompt=initial_prompt, beam_size=self.beam_size,
            without_timestamps=True, condition_on_previous_text=False)
        return [Segment(s.text, s.no_speech_prob) for s in segments], None

    def _decode(self, audio: np.ndarray, language: str | None, initial_prompt: str | None,
                window_secs: float) -> Segment:
        import ctranslate2
        from faster_whisper.tokenizer import Tokenizer

        model = self._model
        features = model.feature_extractor(audio)
        frames = int(window_secs * FRAMES_PER_SEC)
        if features.shape[-1] < frames:
            features = np.pad(features, ((0, 0), (0, frames - features.shape[-1])))
        encoded = model.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None])),
                                     to_cpu=False)
        tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe",
                              language=language or "en")
        prompt = list(tokenizer.sot_sequence) + [tokenizer.no_timestamps]
        if initial_prompt:
            prompt = [tokenizer.sot_prev] + tokenizer.encode(" " + initial_prompt.strip())[-200:] + prompt
        max_tokens = min(440 - len(prompt), int(12 + 8 * len(audio) / SAMPLE_RATE))
        result = model.model.generate(encoded, [prompt], beam_size=self.beam_size, max_length=max_tokens,
                                      return_no_speech_prob=True, suppress_blank=True)[0]
        return Segment(tokenizer.decode(result.sequences_ids[0]), result.no_speech_prob)


class SharedWhisperSTTService(EagerEndOfTurnSTTServiceMixin, WhisperSTTService):
    """WhisperSTTService on a model loaded once per process (pipecat loads one per service)."""

    def __init__(self, *, whisper_model: Any, beam_size: int = 1, window_secs: float = 15.0,
                 vad_analyzer: Any = None, **kwargs: Any):
        self._shared_model = ShortWindowWhisper(whisper_model, window_secs=window_secs, beam_size=beam_size)
        super().__init__(**kwargs)
        self._vad = vad_analyzer  # cadence.processors.silero_shared.SharedSileroVADAnalyzer, or None
        self._early_bytes = 0  # how much of the buffer the early transcription covers (0: none)
        self._unheard = b""  # this turn's segments that came back with no words (16-bit PCM)

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        if isinstance(frame, VADUserStartedSpeakingFrame):
            await self._cancel_eager_end_of_turn()  # the user goes on: the reply begun is void
        elif isinstance(frame, UserStoppedSpeakingFrame):
            self._clear_eager_end_of_turn()  # the turn ended: the reply stands
            self._unheard = b""  # what the turn held and nobody made out stays unheard
        await super().process_frame(frame, direction)

    async def run_stt(self, audio: bytes):
        # A short segment alone ("Nova," then a pause) often comes back empty; its audio is
        # heard again in front of the turn's next segment, so its words are not lost.
        audio = self._unheard + audio
        heard = False
        async for frame in super().run_stt(audio):
            if isinstance(frame, TranscriptionFrame):
                heard = True
                # Ahead of the transcript itself: the aggregator's speculation adds this
                # text to what the turn already holds, so it must not hold it yet.
                await self._push_eager_end_of_turn(frame.text, user_id=frame.user_id, language=frame.language)
            yield frame
        self._unheard = b"" if heard else audio[-MAX_UNHEARD_BYTES:]

    async def process_audio_frame(self, frame: InputAudioRawFrame, direction: FrameDirection):
        await super().process_audio_frame(frame, direction)
        state = getattr(self._vad, "state", None)
        if not self._user_speaking or state is None:
            return
        if state == VADState.STOPPING and not self._early_bytes:
            self._early_bytes = len(self._audio_buffer)
            self._shared_model.prefetch(pcm_to_float(self._unheard + bytes(self._audio_buffer) + self._trailing_silence()),
                                        **self._options())
        elif state == VADState.SPEAKING:
            self._early_bytes = 0  # speech went on: an early transcript would be short of it

    async def _handle_user_stopped_speaking(self, frame: VADUserStoppedSpeakingFrame):
        # Only the quiet audio since the early start follows it: drop that, and the segment
        # pipecat transcribes is the one already being transcribed.
        quiet_bytes = int((frame.stop_secs + 0.15) * self.sample_rate) * 2
        if self._early_bytes and len(self._audio_buffer) - self._early_bytes <= quiet_bytes:
            del self._audio_buffer[self._early_bytes:]
        self._early_bytes = 0
        await super()._handle_user_stopped_speaking(frame)

    def _options(self) -> dict[str, Any]:
        """The options pipecat's ``run_stt`` passes to ``transcribe``."""
        return {"language": assert_given(self._settings.language), "hotwords": assert_given(self._settings.hotwords),
                "initial_prompt": assert_given(self._settings.initial_prompt)}

    def _load(self) -> None:
        self._model = self._shared_model
        unsupported = self._unsupported_language()
        if unsupported:
            raise ValueError(unsupported)
