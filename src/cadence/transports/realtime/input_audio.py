"""Client audio on its way in: decoded from its wire format, resampled, then fed to the
pipeline at the pace it was recorded, or held for the client's own commit.

A client may send audio faster than real time (a recorded file in one burst, a replay). It
is queued, never dropped, up to ``MAX_QUEUE_SECS`` of audio, and fed on at real time: the
turn stage's waits are wall-clock waits, so audio time and wall time must agree for a
recording's pauses to be heard as the pauses they were. An append that puts the client more
than ``BURST_SECS`` ahead is a burst; while a reply is in progress, burst audio that was
already queued when that reply began waits for it to end (a recording cannot hear the
reply, and would otherwise talk over every one). Anything else is live audio (a microphone,
with its pre-roll and network jitter): fed as soon as it is at most ``LIVE_LEAD_SECS``
ahead, never held for a reply, so barge-in works as before.

With turn detection off the client commits the buffer itself; the held audio is then
transcribed through the pipeline's own STT stage (``run_stt``), so the session's
transcription settings (prompt, language) apply exactly as to spoken turns.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from loguru import logger

from pipecat.audio.utils import create_stream_resampler
from pipecat.frames.frames import ErrorFrame, TranscriptionFrame

from cadence.transports.realtime.protocol import ProtocolError, decode_audio
from cadence.transports.realtime.wire_audio import WIRE_RATE, WireAudio

MAX_QUEUE_SECS = 15 * 60  # audio received ahead of real time and not yet fed on
MAX_BUFFER_SECS = 15 * 60  # the longest buffer a client may hold for its own commit
# Audio is fed on in frames of one Silero window (512 samples at 16 kHz): the VAD decides
# once per window whatever the frame size, so this costs no latency, and every frame costs
# each stage a hand-off (31 frames a second instead of a 20 ms chunk's 50). What an append
# leaves over waits for the next one, or PARTIAL_WAIT_SECS at most.
FRAME_MS = 32
PARTIAL_WAIT_SECS = 0.1
BURST_SECS = 1.0  # an append leaving more than this queued is a burst (a recording, a replay)
BURST_LEAD_SECS = 0.2  # how far ahead of its time burst audio is fed
LIVE_LEAD_SECS = 1.0  # ... and live audio (a pre-roll or jitter drains at once)


class InputAudio:
    """The input side of one session's audio (over Realtime events)."""

    def __init__(self, in_rate: int, feed: Callable[[bytes], Awaitable[None]], stt: Any = None,
                 replying_since: Callable[[], float | None] = lambda: None):
        self.in_rate = in_rate
        self._feed = feed
        self._stt = stt
        self._replying_since = replying_since  # when the reply in progress began (monotonic), or None
        self.wire = WireAudio()
        # 24 kHz wire audio → the pipeline's input rate; never reset between appends (pipecat's
        # default clears its state after a 0.2 s gap, dropping the samples it had buffered).
        # "HQ" (20-bit, 91% of the band): pipecat's default "VHQ" holds ~60 ms of audio back,
        # every user's turn that much later; HQ holds ~40 ms (measured with an impulse).
        self._resample = create_stream_resampler(clear_after_secs=None, quality="HQ")
        self.heard_ms = 0.0  # audio fed to the pipeline (or held for a commit): the client's clock
        self._buffer = bytearray()  # held for a manual commit (turn_detection: null)
        self._queue: deque[tuple[bool, float, bytes]] = deque()  # (burst, received at, pcm); bounded in bytes
        self._queued_bytes = 0
        self._partial = b""  # the end of the last append, short of a frame
        self._partial_timer: asyncio.TimerHandle | None = None
        self._last_append = 0.0
        self._wake = asyncio.Event()
        self._feeder: asyncio.Task | None = None

    @property
    def queued_secs(self) -> float:
        """Audio received and not yet fed to the pipeline."""
        return self._queued_bytes / 2 / self.in_rate

    async def append(self, b64: str, wire_format: str, *, hold: bool) -> None:
        """Decode one ``input_audio_buffer.append``; queue it to be fed on, or hold it when ``hold``."""
        pcm = await self.wire.decode(decode_audio(b64), wire_format)
        pcm_in = await self._resample.resample(pcm, WIRE_RATE, self.in_rate)
        if hold:
            if len(self._buffer) + len(pcm_in) > MAX_BUFFER_SECS * self.in_rate * 2:
                raise ProtocolError("input_audio_buffer_full", f"the audio buffer holds {MAX_BUFFER_SECS // 60}"
                                    " minutes already; commit or clear it. This chunk was dropped", param="audio")
            self._buffer.extend(pcm_in)
            self.heard_ms += len(pcm) / 2 / WIRE_RATE * 1000
            return
        if not pcm_in:
            return
        if self._queued_bytes + len(pcm_in) > MAX_QUEUE_SECS * self.in_rate * 2:
            raise ProtocolError("audio_queue_full", f"{self.queued_secs:.1f} s of audio sent ahead of real time are"
                                f" waiting already, and a session queues at most {MAX_QUEUE_SECS:g} s; this chunk"
                                " was dropped. Send the rest once the session has caught up", param="audio")
        burst = (self._queued_bytes + len(self._partial) + len(pcm_in)) / 2 / self.in_rate > BURST_SECS
        pcm_in, step = self._partial + pcm_in, self.in_rate * FRAME_MS // 1000 * 2  # whole samples
        whole = len(pcm_in) - len(pcm_in) % step
        self._partial = pcm_in[whole:]
        self._enqueue(burst, [pcm_in[i:i + step] for i in range(0, whole, step)])
        self._last_append = time.monotonic()
        if self._partial and self._partial_timer is None:  # one timer armed at a time, not one per append
            self._partial_timer = asyncio.get_running_loop().call_later(PARTIAL_WAIT_SECS, self._flush_partial, False)

    def _flush_partial(self, now: bool = True) -> None:
        """No append came to complete the last frame: feed what there is (``now``: at once)."""
        if now and self._partial_timer is not None:
            self._partial_timer.cancel()
        self._partial_timer = None
        if not self._partial:
            return
        wait = self._last_append + PARTIAL_WAIT_SECS - time.monotonic()
        if not now and wait > 0:  # appends kept coming: wait for the last one's time
            self._partial_timer = asyncio.get_running_loop().call_later(wait, self._flush_partial, False)
            return
        pcm, self._partial = self._partial, b""
        self._enqueue(False, [pcm])

    def _enqueue(self, burst: bool, frames: list[bytes]) -> None:
        if not frames:
            return
        now = time.monotonic()
        self._queue.extend((burst, now, pcm) for pcm in frames)
        self._queued_bytes += sum(map(len, frames))
        self._wake.set()
        if self._feeder is None or self._feeder.done():
            self._feeder = asyncio.create_task(self._feed_at_pace())

    def hold_queued(self) -> None:
        """Turn detection went off: audio not yet fed joins the buffer the client will commit."""
        self._flush_partial()
        while self._queue and len(self._buffer) < MAX_BUFFER_SECS * self.in_rate * 2:
            _, _, pcm = self._queue.popleft()
            self._buffer.extend(pcm)
            self.heard_ms += len(pcm) / 2 / self.in_rate * 1000
        if self._queue:
            logger.warning(f"realtime: {self.queued_secs:.1f} s of queued audio dropped: the commit buffer is full")
        self.clear_queue()

    async def _feed_at_pace(self) -> None:
        due = time.monotonic()  # when the next chunk's audio starts, on the wall clock
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            burst, received, pcm = self._queue[0]
            since = self._replying_since()
            if burst and since is not None and received < since:  # queued before this reply began: after it
                await asyncio.sleep(0.05)
                continue
            now = time.monotonic()
            due = max(due, now)
            lead = BURST_LEAD_SECS if burst else LIVE_LEAD_SECS
            if due - now > lead:
                await asyncio.sleep(due - now - lead)
                continue  # a reply may have begun meanwhile
            self._queue.popleft()
            self._queued_bytes -= len(pcm)
            secs = len(pcm) / 2 / self.in_rate
            due += secs
            self.heard_ms += secs * 1000
            try:
                await self._feed(pcm)
            except Exception:  # one bad push must not stop the audio after it
                logger.exception("feeding input audio to the pipeline failed")

    def clear(self) -> None:
        """``input_audio_buffer.clear``: the held buffer and the audio not yet fed."""
        self._buffer.clear()
        self.clear_queue()

    def clear_queue(self) -> None:
        self._queue.clear()
        self._queued_bytes = 0
        self._partial = b""

    async def close(self) -> None:
        """Stop feeding (the session is over)."""
        if self._partial_timer is not None:
            self._partial_timer.cancel()
        if self._feeder is not None:
            self._feeder.cancel()
            await asyncio.gather(self._feeder, return_exceptions=True)

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
