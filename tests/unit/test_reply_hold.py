"""The reply hold (processors/reply_hold.py): a reply's first audio waits for the hold's end
and for speech beginning to settle; an interruption drops what is held."""

from __future__ import annotations

import asyncio
import time

from pipecat.audio.vad.vad_analyzer import VADState
from pipecat.frames.frames import (
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    TTSAudioRawFrame,
    TTSTextFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.tests.utils import SleepFrame, run_test

from cadence.frames import ReplyHoldFrame
from cadence.processors.reply_hold import ReplyHoldMixin

REPLY = [LLMFullResponseStartFrame(), TTSAudioRawFrame(bytes(960), 24000, 1), TTSTextFrame("Hi.", "sentence"),
         LLMFullResponseEndFrame()]


class _Stamped(FrameProcessor):
    def __init__(self):
        super().__init__()
        self.sent: list[tuple[float, str]] = []

    async def push_frame(self, frame, direction=FrameDirection.DOWNSTREAM):
        if direction == FrameDirection.DOWNSTREAM:
            self.sent.append((time.monotonic(), type(frame).__name__))
        await super().push_frame(frame, direction)


class RelayDouble(ReplyHoldMixin, _Stamped):
    """Test double: a TTS stand-in that passes every frame on, through the hold."""

    def __init__(self, vad=None):
        super().__init__()
        self._init_reply_hold(vad)

    async def process_frame(self, frame, direction):
        await super().process_frame(frame, direction)
        if not isinstance(frame, ReplyHoldFrame):
            await self.push_frame(frame, direction)

    def first(self, name: str) -> float:
        return next(t for t, n in self.sent if n == name)


class VADDouble:
    state = VADState.QUIET


async def test_the_first_audio_waits_for_the_hold_in_order_and_a_reply_without_one_is_not_held():
    relay = RelayDouble()
    start = time.monotonic()
    down, _ = await run_test(relay, frames_to_send=[ReplyHoldFrame(until=start + 0.3), *REPLY, SleepFrame(0.5),
                                                    *REPLY])
    names = [type(f).__name__ for f in down]
    assert names == ["LLMFullResponseStartFrame", "TTSAudioRawFrame", "TTSTextFrame", "LLMFullResponseEndFrame"] * 2
    audio = [t for t, n in relay.sent if n == "TTSAudioRawFrame"]
    assert start + 0.3 <= audio[0] < start + 0.45
    starts = [t for t, n in relay.sent if n == "LLMFullResponseStartFrame"]
    assert audio[1] - starts[1] < 0.05  # the next reply, with no hold of its own, goes at once


async def test_speech_beginning_keeps_the_first_audio_back_until_it_settles():
    vad = VADDouble()
    vad.state = VADState.STARTING
    relay = RelayDouble(vad)

    start = time.monotonic()

    async def settle_later():  # the VAD hears nothing more 0.25 s later (a cough, not speech)
        await asyncio.sleep(0.25)
        vad.state = VADState.QUIET

    task = asyncio.create_task(settle_later())
    await run_test(relay, frames_to_send=[ReplyHoldFrame(until=start), *REPLY, SleepFrame(0.4)])
    await task
    assert start + 0.25 <= relay.first("TTSAudioRawFrame") < start + 0.4


async def test_speech_that_does_not_settle_holds_no_longer_than_the_cap():
    vad = VADDouble()
    vad.state = VADState.SPEAKING  # e.g. barge-in off: nothing interrupts, the reply must still come
    relay = RelayDouble(vad)
    start = time.monotonic()
    await run_test(relay, frames_to_send=[ReplyHoldFrame(until=start), *REPLY, SleepFrame(0.9)])
    assert start + 0.6 <= relay.first("TTSAudioRawFrame") < start + 0.8


async def test_an_interruption_drops_the_held_reply_unheard_and_what_it_still_makes_until_the_next_reply():
    relay = RelayDouble()
    late = [TTSAudioRawFrame(bytes(960), 24000, 1), TTSTextFrame("assist you", "sentence"), LLMFullResponseEndFrame()]
    down, _ = await run_test(relay, frames_to_send=[
        ReplyHoldFrame(until=time.monotonic() + 0.3), *REPLY[:3], SleepFrame(0.1), InterruptionFrame(),
        SleepFrame(0.05), *late, SleepFrame(0.4), *REPLY])
    names = [type(f).__name__ for f in down if not isinstance(f, InterruptionFrame)]
    # The end of the dropped reply passes (bookkeeping downstream); its words and sound do not.
    assert names == ["LLMFullResponseEndFrame", "LLMFullResponseStartFrame", "TTSAudioRawFrame", "TTSTextFrame",
                     "LLMFullResponseEndFrame"]
