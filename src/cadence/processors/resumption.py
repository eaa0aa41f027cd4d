"""Turn resumption: speech that comes after the turn was judged over, but before any of the
reply was heard, continues the same user turn.

The turn stage can judge a turn over in a pause ("Good evening Nova." … "What did you do
today?"). When the user goes on before the reply's first audio has played, the reply is
dropped (an interruption, whether or not barge-in is on: nothing of it was heard) and the
user message it answered leaves the context; its text opens the new turn, so the aggregator
writes one user message with the whole transcript and one reply answers it. Placed right
before the user aggregator.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    Frame,
    InterruptionFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from cadence.frames import TurnResumedFrame


WRITE_WAIT_SECS = 0.5  # how long the ended turn's message may take to be written
POLL_SECS = 0.02


class TurnResumption(FrameProcessor):
    """Joins a continuation to the turn before it while that turn's reply is still unheard."""

    def __init__(self, llm_context: Any, **kwargs):
        super().__init__(**kwargs)
        self._context = llm_context  # the session's pipecat LLMContext
        self._awaiting_reply = False  # a spoken turn ended and none of its reply has been heard
        self._written_from = 0  # where in the context that turn's message is (or will be) written
        self.resumed = 0
        # Off where a reply is not spoken by itself: a text reply is seen as it streams, and
        # with responses made on request the turn was already shown (the transport says).
        self.enabled = True

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, BotStartedSpeakingFrame):
            self._awaiting_reply = False
        elif isinstance(frame, UserStoppedSpeakingFrame) and direction == FrameDirection.DOWNSTREAM:
            self._awaiting_reply, self._written_from = True, len(self._context.get_messages())
        elif isinstance(frame, UserStartedSpeakingFrame) and direction == FrameDirection.DOWNSTREAM:
            await self.push_frame(frame, direction)
            if self._awaiting_reply and self.enabled:
                self._awaiting_reply = False
                self.create_task(self._resume(), f"{self}::resume")
            return
        await self.push_frame(frame, direction)

    async def _resume(self) -> None:
        # The aggregator writes the ended turn's message a moment after the turn ends (it
        # waits for late transcript), so it may not be there yet; the new speech's own
        # transcript comes much later (after its VAD stop), so there is time to wait for it.
        for _ in range(int(WRITE_WAIT_SECS / POLL_SECS)):
            text = self._take_unanswered()
            if text is not None:
                self.resumed += 1
                await self.push_frame(TurnResumedFrame(text=text))
                await self.push_frame(InterruptionFrame())  # the unheard reply goes, barge-in or not
                await self.push_frame(TranscriptionFrame(text, "", ""))
                return
            if self._awaiting_reply:  # another turn ended meanwhile: this one was answered
                return
            await asyncio.sleep(POLL_SECS)

    def _take_unanswered(self) -> str | None:
        """The ended turn's user message, removed from the context, if nothing answers it yet."""
        messages = self._context.get_messages()
        last = messages[-1] if len(messages) > self._written_from else None
        if not isinstance(last, dict) or last.get("role") != "user" or not isinstance(last.get("content"), str):
            return None
        self._context.set_messages(messages[:-1])
        return last["content"]
