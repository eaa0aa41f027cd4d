"""Client audio on its way in: decoded from its wire format, paced, resampled, then fed to
the pipeline or held for the client's own commit.

With turn detection off the client commits the buffer itself; the held audio is then
transcribed through the pipeline's own STT stage (``run_stt``), so the session's
transcription settings (prompt, language) apply exactly as to spoken turns.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from pipecat.audio.utils import create_stream_resampler
from pipecat.frames.frames import ErrorFrame, TranscriptionFrame

from cadence.transports.realtime.protocol import ProtocolError, decode_audio
from cadence.transports.realtime.wire_audio import WIRE_RATE, WireAudio

MAX_AHEAD_MS = 10_000  # how far ahead of real time a client may send audio
MAX_BUFFER_SECS = 15 * 60  # the longest buffer a client may hold for its own commit


class InputAudio:
    """The input side of one session's audio (over Realtime events)."""

    def __init__(self, in_rate: int, feed: Callable[[bytes], Awaitable[None]], stt: Any = None):
        self.in_rate = in_rate
        self._feed = feed
        self._stt = stt
        self.wire = WireAudio()
        self._resample = create_stream_resampler()  # 24 kHz wire audio → the pipeline's input rate
        self.heard_ms = 0.0  # audio received so far (the client's clock)
        self._first_at: float | None = None
        self._buffer = bytearray()  # held for a manual commit (turn_detection: null)

    async def append(self, b64: str, wire_format: str, *, hold: bool) -> None:
        """Decode one ``input_audio_buffer.append``; feed it on, or hold it when ``hold``."""
        pcm = await self.wire.decode(decode_audio(b64), wire_format)
        chunk_ms = len(pcm) / 2 / WIRE_RATE * 1000
        now = time.monotonic()
        self._first_at = self._first_at or now
        if self.heard_ms + chunk_ms - (now - self._first_at) * 1000 > MAX_AHEAD_MS:
            raise ProtocolError("audio_too_fast", f"audio is arriving more than {MAX_AHEAD_MS // 1000} s ahead of"
                                " real time; this chunk was dropped. Send audio at the pace it is recorded",
                                param="audio")
        pcm_in = await self._resample.resample(pcm, WIRE_RATE, self.in_rate)
        if hold:
            if len(self._buffer) + len(pcm_in) > MAX_BUFFER_SECS * self.in_rate * 2:
                raise ProtocolError("input_audio_buffer_full", f"the audio buffer holds {MAX_BUFFER_SECS // 60}"
                                    " minutes already; commit or clear it. This chunk was dropped", param="audio")
            self._buffer.extend(pcm_in)
        elif pcm_in:
            await self._feed(pcm_in)
        self.heard_ms += chunk_ms

    def clear(self) -> None:
        self._buffer.clear()

    def take(self) -> bytes:
        """The held audio (at least 100 ms), emptying the buffer; ProtocolError if too little."""
        if len(self._buffer) < self.in_rate * 2 // 10:
            raise ProtocolError("input_audio_buffer_commit_empty", "the audio buffer holds less than 100 ms of audio")
        pcm, self._buffer = bytes(self._buffer), bytearray()
        return pcm

    async def transcribe(self, pcm: bytes) -> str:
        """``pcm`` (16-bit mono at the input rate) through the pipeline's STT stage."""
        if self._stt is None:
            raise ProtocolError("unsupported", "this pipeline has no stt stage to transcribe a committed buffer")
        texts = []
        async for frame in self._stt.run_stt(pcm):
            if isinstance(frame, TranscriptionFrame) and frame.text.strip():
                texts.append(frame.text.strip())
            elif isinstance(frame, ErrorFrame):
                raise ProtocolError("transcription_failed", f"transcription failed: {frame.error}",
                                    kind="server_error")
        return " ".join(texts)
