"""``filler``: a short phrase ("Hmm, let me think.") when a reply is slow to start.

It sits between the ``llm`` and ``tts`` stages. When none of a reply's words has come
within ``initial_wait_timeout_ms`` of its request (``ReplyRequestedFrame``, from the llm
stage), the filler is handed to the TTS as a ``TTSSpeakFrame``: it is
spoken first and is part of the assistant's turn (its transcript and its context message),
and the reply's words queue behind it in the same TTS, so the two never overlap. The reply
itself is never held for it. At most ``max_initial_per_turn`` per reply, none within
``min_filler_gap_ms`` of the last, none once ``hard_deadline_ms`` has passed, and none on the
session's first reply unless ``enable_filler_on_first_assistant_reply``.

The session's ``providerData.responsiveness`` (Inworld's names) sets the same fields. Its
fields for a filler written by a small model (``small_model``, ``temperature``,
``max_tokens``, ``history_tail_items``) have no effect here: fillers are fixed phrases
(``pause_text``, or the ``filler_phrase`` preset); the session reports those fields as
unsupported.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Literal

from loguru import logger
from pipecat.frames.frames import (
    Frame,
    StartFrame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSSpeakFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pydantic import Field, model_validator

from cadence.frames import PrerenderSpeechFrame, ReplyRequestedFrame
from cadence.stages import BuildContext, ProcessorSpec, Spec, Stage

PRESETS = {
    "short": ["Hmm.", "Let me see.", "Hmm, let me think."],
    "long": ["Hmm, let me think about that.", "Oh, good question, let me see.", "Give me a second."],
}
# providerData.responsiveness fields that drive a generated filler: accepted, reported unsupported.
GENERATED_FILLER_FIELDS = ("small_model", "temperature", "max_tokens", "history_tail_items")


class FillerParams(Spec):
    """Params of the ``filler`` stage (and of ``providerData.responsiveness``)."""

    enabled: bool = Field(False, description="Speak a filler when a reply's first words are late.")
    initial_wait_timeout_ms: int = Field(1200, ge=0, le=30000, description="How long a reply may take to start"
                                         " before the filler is spoken (from the reply's start).")
    hard_deadline_ms: int = Field(2000, ge=0, le=60000, description="No filler once this much time has passed"
                                  " (it would only delay a reply that is about to come); at least"
                                  " initial_wait_timeout_ms.")
    min_filler_gap_ms: int = Field(8000, ge=0, description="No filler within this long of the last one.")
    max_initial_per_turn: int = Field(1, ge=0, le=1, description="Fillers per reply (0 or 1).")
    enable_filler_on_first_assistant_reply: bool = Field(False, description="Allow a filler on the session's"
                                                         " first reply too.")
    pause_text: str | list[str] | None = Field(None, description="The filler phrase(s), used in turn; default:"
                                               " the filler_phrase preset.")
    filler_phrase: Literal["short", "long"] = Field("short", description="Preset phrases when pause_text is unset.")

    @model_validator(mode="after")
    def _deadline_after_wait(self) -> FillerParams:
        if self.hard_deadline_ms < self.initial_wait_timeout_ms:
            raise ValueError(f"hard_deadline_ms ({self.hard_deadline_ms}) is before initial_wait_timeout_ms"
                             f" ({self.initial_wait_timeout_ms}): no filler could ever be spoken")
        return self

    def phrases(self) -> list[str]:
        """The phrases to speak, in turn."""
        if isinstance(self.pause_text, str) and self.pause_text.strip():
            return [self.pause_text.strip()]
        if isinstance(self.pause_text, list) and [p for p in self.pause_text if p.strip()]:
            return [p.strip() for p in self.pause_text if p.strip()]
        return PRESETS[self.filler_phrase]


class FillerInjector(FrameProcessor):
    """Speaks a filler phrase ahead of a reply whose first words are late (see the module)."""

    def __init__(self, params: FillerParams | None = None, **kwargs):
        super().__init__(**kwargs)
        self.params = params or FillerParams()
        self._phrases = itertools.cycle(self.params.phrases())
        self._timer: asyncio.Task | None = None
        self._replies = 0
        self._last_filler: float | None = None
        self.spoken = 0  # fillers spoken by this session (metrics, tests)
        self._started = False
        self._reply_begun = asyncio.Event()

    def configure(self, params: FillerParams) -> None:
        """New settings, from the next reply on."""
        changed = params.phrases() != self.params.phrases() or params.enabled != self.params.enabled
        self.params = params
        self._phrases = itertools.cycle(params.phrases())
        if changed and params.enabled and self._started:
            self.create_task(self._prerender(), f"{self}::prerender")

    async def _prerender(self) -> None:
        # The TTS renders the phrases now, so a filler costs no synthesis when it is due.
        await self.push_frame(PrerenderSpeechFrame(texts=self.params.phrases()))

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame):
            await self.push_frame(frame, direction)
            self._started = True
            if self.params.enabled:
                await self._prerender()
            return
        if direction == FrameDirection.DOWNSTREAM:
            if isinstance(frame, ReplyRequestedFrame):
                self._replies += 1
                self._reply_begun.clear()
                await self._stop_timer()
                if self._allowed():
                    self._timer = self.create_task(self._wait(time.monotonic()), f"{self}::filler")
            elif isinstance(frame, LLMFullResponseStartFrame):
                if frame.skip_tts:  # a written reply: nothing is spoken, so no filler either
                    await self._stop_timer()
                self._reply_begun.set()
            elif isinstance(frame, LLMTextFrame) and frame.text.strip():
                await self._stop_timer()  # the reply's words are here: no filler
            elif isinstance(frame, (LLMFullResponseEndFrame, InterruptionFrame)):
                await self._stop_timer()
        await self.push_frame(frame, direction)

    def _allowed(self) -> bool:
        p = self.params
        if not p.enabled or p.max_initial_per_turn < 1:
            return False
        if self._replies == 1 and not p.enable_filler_on_first_assistant_reply:
            return False
        return self._last_filler is None or (time.monotonic() - self._last_filler) * 1000 >= p.min_filler_gap_ms

    async def _wait(self, started: float) -> None:
        p = self.params
        await asyncio.sleep(p.initial_wait_timeout_ms / 1000)
        try:  # the filler belongs to the reply, so not before the reply has begun
            await asyncio.wait_for(self._reply_begun.wait(), max(0.0, p.hard_deadline_ms / 1000 - (time.monotonic() - started)))
        except TimeoutError:
            pass
        self._timer = None
        if not self._reply_begun.is_set() or (time.monotonic() - started) * 1000 > p.hard_deadline_ms:
            return  # the loop was too busy to say it in time: the reply is nearly here
        self._last_filler = time.monotonic()
        self.spoken += 1
        logger.debug(f"{self}: the reply is late: filler")
        await self.push_frame(TTSSpeakFrame(next(self._phrases)))

    async def _stop_timer(self) -> None:
        task, self._timer = self._timer, None
        if task is not None and task is not asyncio.current_task():
            await self.cancel_task(task)

    async def cleanup(self):
        await super().cleanup()
        await self._stop_timer()


def build(params: FillerParams, context: BuildContext) -> Stage:
    """A FillerInjector (place it between the llm and tts stages)."""
    injector = FillerInjector(params)
    context.roles.filler = injector
    return Stage(injector)


SPEC = ProcessorSpec("filler", FillerParams, build, "A short filler phrase when a reply is slow to start"
                     " (between llm and tts).", hears_audio=False)
