"""Silero VAD on an ONNX session shared by every session of the process, its windows
scored in batches across sessions.

pipecat's ``SileroVADAnalyzer`` loads the model for each analyzer (~11 MB and ~30 ms per
session, measured here) and runs it on a thread of its own: one thread hand-off per audio
chunk per session, which cost a listening session ~5% of a core where the model itself
costs 0.3% (0.11 ms per 32 ms window). Here one ``SileroBatcher`` per event loop scores
the windows every session has waiting in one ONNX run on one thread (0.055 ms a window at
a batch of 50): while a run is in flight the next batch gathers, so batches grow with the
load and a lone session waits for nobody. The recurrent state stays per session (a
``SileroOnnxModel`` used as its holder), stacked along the batch axis for each run.

pipecat's VAD counts a frame as speech only once its loudness window holds
``VOLUME_WINDOW_SECS`` of audio (the volume reads 0 before), so a user who speaks the moment
a session opens was not heard for half a second ("Can you tell me" became a 0.08 s segment,
or none). The window starts full of silence instead, as if the session had been quiet.
"""

from __future__ import annotations

import asyncio
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from weakref import WeakKeyDictionary

import numpy as np
from loguru import logger

from pipecat.audio.vad.silero import SileroOnnxModel, SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADAnalyzer, VADParams, VADState
from pipecat.audio.volume import VOLUME_WINDOW_SECS

MAX_BATCH = 256  # windows per ONNX run (a larger backlog runs in several)
_CONTEXT = {16000: 64, 8000: 32}  # samples of the previous window the model sees before each
_WINDOW = {16000: 512, 8000: 256}  # samples per window


class SileroBatcher:
    """Scores Silero windows from many sessions together, one run at a time, on one thread."""

    def __init__(self, session: Any):
        self._session = session
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="silero")
        self._waiting: list[tuple[SileroOnnxModel, np.ndarray, int, asyncio.Future]] = []
        self._running = False
        self._drainer: asyncio.Task | None = None
        self.runs = 0  # ONNX runs so far (and windows scored), for the benchmark and tests
        self.windows = 0

    async def score(self, model: SileroOnnxModel, window: bytes, sample_rate: int) -> float:
        """The speech probability of one window (512 samples at 16 kHz, 256 at 8 kHz) for the
        session whose recurrent state ``model`` holds; updates that state."""
        if sample_rate not in _WINDOW or len(window) != 2 * _WINDOW[sample_rate]:  # fails alone, not the batch
            logger.error(f"Silero VAD: a window of {len(window) // 2} samples at {sample_rate} Hz cannot be scored")
            return 0.0
        future = asyncio.get_running_loop().create_future()
        samples = np.frombuffer(window, np.int16).astype(np.float32) / 32768.0
        self._waiting.append((model, samples, sample_rate, future))
        if not self._running:
            self._running = True
            self._drainer = asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
                for rate in {request[2] for request in batch}:
                    group = [request for request in batch if request[2] == rate]
                    try:
                        scores = await loop.run_in_executor(self._executor, self._run, group, rate)
                    except Exception as exc:  # pipecat scores a window it cannot analyse as silence
                        logger.error(f"Silero VAD failed on a batch of {len(group)}: {exc}")
                        scores = [0.0] * len(group)
                    for (_, _, _, future), score in zip(group, scores):
                        if not future.done():  # its session may have gone meanwhile
                            future.set_result(score)
        finally:
            self._running = False

    def _run(self, group: list, rate: int) -> list[float]:
        context_size = _CONTEXT[rate]
        for model, _, _, _ in group:
            if model._last_sr != rate or model._state.shape[1] != 1:
                model.reset_states()
            if not model._context.shape[1]:
                model._context = np.zeros((1, context_size), dtype=np.float32)
        x = np.concatenate([np.concatenate((model._context[0], samples))[None, :]
                            for model, samples, _, _ in group])
        state = np.concatenate([model._state for model, _, _, _ in group], axis=1)
        out, new_state = self._session.run(None, {"input": x, "state": state, "sr": np.array(rate, dtype=np.int64)})
        for i, (model, _, _, _) in enumerate(group):
            model._state = new_state[:, i:i + 1].copy()
            model._context = x[i:i + 1, -context_size:].copy()
            model._last_sr, model._last_batch_size = rate, 1
        self.runs += 1
        self.windows += len(group)
        return [float(score) for score in out[:, 0]]


_BATCHERS: WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, SileroBatcher]] = WeakKeyDictionary()


def batcher_for(session: Any) -> SileroBatcher:
    """The running loop's batcher for ``session`` (futures belong to one loop)."""
    per_loop = _BATCHERS.setdefault(asyncio.get_running_loop(), {})
    if id(session) not in per_loop:
        per_loop[id(session)] = SileroBatcher(session)
    return per_loop[id(session)]


class SharedSileroVADAnalyzer(SileroVADAnalyzer):
    """SileroVADAnalyzer whose ONNX session is handed in instead of loaded, and whose
    windows are scored by the loop's ``SileroBatcher`` instead of on a thread of its own."""

    def __init__(self, *, session: Any, params: VADParams | None = None):
        # Skip SileroVADAnalyzer.__init__: it would load another copy of the model.
        VADAnalyzer.__init__(self, params=params)
        model = SileroOnnxModel.__new__(SileroOnnxModel)
        model.session = session
        model.sample_rates = [8000, 16000]
        model.reset_states()
        self._model = model
        self._session = session
        self._windows_since_reset = 0
        self._low_confidence_windows = 0
        self._scores: deque[float] = deque()
        self.state = VADState.QUIET

    def set_sample_rate(self, sample_rate: int):
        super().set_sample_rate(sample_rate)
        self._volume_tracker.update(bytes(2 * int(sample_rate * VOLUME_WINDOW_SECS)), sample_rate)

    async def analyze_audio(self, buffer: bytes) -> VADState:
        """pipecat's analysis: the batcher scores each complete window first, then pipecat's
        own state machine (``_run_analyzer``) takes the buffer as it would, with those scores.
        (A model reset pipecat makes between two windows of one buffer applies from the next
        buffer here; with frames of one window, as every transport here sends, none is late.)
        Keeps the state it returns: the STT stage reads the moment speech turns to silence
        (``STOPPING``) to start transcribing before the VAD stop."""
        size = self._vad_frames_num_bytes
        self._scores.clear()  # none left over from a call cancelled while it waited
        pending = bytes(self._vad_buffer) + buffer
        batcher = batcher_for(self._session)
        for start in range(0, len(pending) - size + 1, size):
            self._scores.append(await batcher.score(self._model, pending[start:start + size], self.sample_rate))
        self.state = self._run_analyzer(buffer)
        return self.state

    def voice_confidence(self, buffer) -> float:
        """The score the batcher gave this window (pipecat's per-window model reset kept)."""
        confidence = self._scores.popleft() if self._scores else 0.0
        self._maybe_reset_model(confidence)
        return confidence
