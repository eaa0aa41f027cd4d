"""Holding a reply's first audio until the user has had time to go on.

After a statement ("Good evening, Nova.") a second sentence often follows a short pause.
Waiting that much longer before ending the turn would delay every such reply by the wait;
instead the turn ends at once (the LLM and the TTS start working) and the reply's first
audio is held until the moment the wait would have ended. And whatever the hold, the first
audio is not let out while the VAD hears speech beginning (its ``STARTING`` state, the
~0.2 s before it confirms a start, or ``SPEAKING``; at most 0.6 s): a reply that is ready just as the user goes on would
otherwise be heard over them, where a moment later their speech resumes the turn
(``resumption.py``), whose interruption drops what is held, unheard. The hold overlaps the
reply's own first-audio latency, so it costs nothing when the reply takes longer than it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from loguru import logger
from pipecat.audio.vad.vad_analyzer import VADState
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    SystemFrame,
    TextFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
)
from pipecat.processors.frame_processor import FrameDirection

from cadence.frames import ReplyHoldFrame, ReplyRequestedFrame

POLL_SECS = 0.01
ARM_SECS = 3.0  # a hold not taken up by a reply starting this soon is stale (that turn got none)
MAX_ONSET_SECS = 0.6  # past the hold, how long speech beginning may keep the first audio back
ONSET_STATES = (VADState.STARTING, VADState.SPEAKING)
# An interrupted held reply's late output: its words and sound (its end frames pass: they
# finish pipecat's bookkeeping downstream).
DROPPED_REPLY_FRAMES = (TTSAudioRawFrame, TTSStartedFrame, TextFrame)


class ReplyHoldMixin:
    """For a TTS service (the last stage a reply passes before it is heard): after a
    ``ReplyHoldFrame``, the next reply's frames are kept back, in order, until its first audio
    (or its end) is ready, the frame's ``until`` has passed and the VAD hears no speech
    beginning; an interruption drops them. Mixed into the service itself, not a stage after
    it, because the Realtime session reads the spoken transcript from the TTS's own frames:
    held there, the client is told of the reply when it is heard, not before.
    The service calls ``_init_reply_hold(vad)`` in its ``__init__`` (``vad``: an analyzer with
    a ``state``, e.g. ``SharedSileroVADAnalyzer``; ``None``: the hold's time alone)."""

    def _init_reply_hold(self, vad: Any = None) -> None:
        self._hold_vad = vad
        self._hold_armed: float | None = None  # for the next reply (one being spoken goes on)
        self._armed_at = 0.0
        self._holding = False
        self._held: list[Frame] = []
        self._hold_task: asyncio.Task | None = None
        self._discarding = False  # an interrupted held reply's late output is dropped

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        if isinstance(frame, ReplyRequestedFrame):
            self._discarding = False  # a new reply (or a filler for it) may speak
        if isinstance(frame, ReplyHoldFrame):
            self._hold_armed, self._armed_at = frame.until, time.monotonic()
            return
        if isinstance(frame, (InterruptionFrame, CancelFrame)):
            await self._drop_held()
        await super().process_frame(frame, direction)

    async def push_frame(self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM):
        if direction != FrameDirection.DOWNSTREAM or isinstance(frame, SystemFrame):
            await super().push_frame(frame, direction)
            return
        if isinstance(frame, LLMFullResponseStartFrame):
            self._discarding = False  # the next reply
        if self._discarding and isinstance(frame, DROPPED_REPLY_FRAMES):
            return
        if isinstance(frame, LLMFullResponseStartFrame) and self._hold_armed is not None and not self._holding:
            until, self._hold_armed = self._hold_armed, None
            if time.monotonic() - self._armed_at < ARM_SECS:
                self._holding = True
                self._hold_task = self.create_task(self._release_when_clear(until), f"{self}::reply_hold")
        # What pipecat pushes while the held frames are let out (silence after a stop, the
        # assistant aggregation) belongs where it is pushed, not behind the queue.
        if self._holding and asyncio.current_task() is not self._hold_task:
            self._held.append(frame)
            return
        await super().push_frame(frame, direction)

    def _speech_beginning(self) -> bool:
        return getattr(self._hold_vad, "state", None) in ONSET_STATES

    async def _release_when_clear(self, until: float) -> None:
        try:
            onset = None  # when speech beginning was first heard while this reply waited
            while True:
                ready = any(isinstance(f, (TTSAudioRawFrame, LLMFullResponseEndFrame, EndFrame)) for f in self._held)
                now = time.monotonic()
                onset = (onset or now) if self._speech_beginning() else None
                if ready and now >= until and (onset is None or now >= onset + MAX_ONSET_SECS):
                    break
                await asyncio.sleep(POLL_SECS)
            logger.debug(f"{self}: reply released {now - until:.2f}s after its hold ended")
            while self._held:  # frames pushed meanwhile join the queue, so their order is kept
                await super().push_frame(self._held.pop(0), FrameDirection.DOWNSTREAM)
        finally:  # whatever happens, the service never stays holding (a silent bot)
            if self._hold_task is asyncio.current_task():
                self._holding, self._hold_task = False, None

    async def _drop_held(self) -> None:
        task = self._hold_task
        # What the interrupted reply still makes (pipecat's LLM ends its response before it
        # passes the interruption on, and the TTS speaks the text that end flushes) is dropped
        # too, until the next reply: heard alone it would talk over the user who just went on.
        self._discarding = self._discarding or self._holding
        for frame in self._held:  # pipecat forgets a context at its stop frame, which now never passes
            if isinstance(frame, TTSStoppedFrame) and frame.context_id:
                getattr(self, "_tts_contexts", {}).pop(frame.context_id, None)
        self._hold_armed, self._holding, self._hold_task, self._held = None, False, None, []
        if task is not None and task is not asyncio.current_task():
            await self.cancel_task(task)
