"""The backchannel stage's moments (run_test, a phrase-rendering TTS double, no models):
pauses the turn model holds open, speech unless require_pause, the knobs' limits, never
while a reply plays, never after the turn is judged finished."""

from __future__ import annotations

import pytest
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.tests.utils import SleepFrame, run_test

from cadence.frames import BackchannelAudioFrame, TurnPauseFrame
from cadence.processors.backchannel import BackchannelInjector, BackchannelParams


class PhraseTTSDouble(FrameProcessor):
    """Renders any phrase as 0.3 s of a constant tone at 16 kHz (a test double)."""

    async def render_phrase(self, text: str) -> tuple[bytes, int]:
        return (b"\x00\x10" * 4800), 16000


def speech(secs: float) -> list:
    return [VADUserStartedSpeakingFrame(start_secs=0.0), SleepFrame(secs), VADUserStoppedSpeakingFrame(stop_secs=0.0)]


def pause(unfinished: bool = True, secs: float = 0.3) -> list:
    return [TurnPauseFrame(unfinished=unfinished, score=0.1, wait_secs=1.0), SleepFrame(secs)]


async def played(params: BackchannelParams, frames: list) -> list[BackchannelAudioFrame]:
    injector = BackchannelInjector(params, tts=PhraseTTSDouble())
    down, _ = await run_test(injector, frames_to_send=[SleepFrame(0.05), UserStartedSpeakingFrame(), *frames],
                             expected_down_frames=None)
    return [f for f in down if isinstance(f, BackchannelAudioFrame)]


async def test_a_pause_held_open_gets_one_after_enough_speech():
    params = BackchannelParams(enabled=True, require_pause=True, min_speech_ms=300, min_gap_ms=0)
    out = await played(params, [*speech(0.1), *pause(), *speech(0.3), *pause(), *speech(0.3), *pause(False)])
    assert len(out) == 1  # the first pause came after 0.1 s of speech; the last was judged finished
    assert out[0].text == "Mm-hm." and out[0].sample_rate == 24000
    assert len(out[0].audio) == pytest.approx(0.3 * 24000 * 2, rel=0.05)  # resampled to the output rate
    gain = abs(int.from_bytes(out[0].audio[1000:1002], "little", signed=True)) / 0x1000
    assert gain == pytest.approx(0.6, abs=0.05)  # volume_gain


async def test_speech_gets_them_unless_a_pause_is_required():
    knobs = dict(enabled=True, min_speech_ms=200, min_gap_ms=300, eval_interval_ms=100, max_per_turn=10)
    assert len(await played(BackchannelParams(**knobs), speech(1.25))) in (3, 4)  # gap-limited
    assert await played(BackchannelParams(**knobs, require_pause=True), speech(1.25)) == []
    assert len(await played(BackchannelParams(**{**knobs, "max_per_turn": 2}), speech(1.25))) == 2


async def test_never_while_a_reply_plays_after_the_turn_or_off_or_late():
    knobs = dict(enabled=True, require_pause=True, min_speech_ms=0, min_gap_ms=0)
    assert await played(BackchannelParams(**knobs), [BotStartedSpeakingFrame(), *speech(0.2), *pause()]) == []
    assert await played(BackchannelParams(**knobs), [*speech(0.2), UserStoppedSpeakingFrame(), *pause()]) == []
    assert await played(BackchannelParams(**{**knobs, "enabled": False}), [*speech(0.2), *pause()]) == []
    late = [VADUserStartedSpeakingFrame(start_secs=0.0), SleepFrame(0.2), VADUserStoppedSpeakingFrame(stop_secs=0.3),
            SleepFrame(0.1), *pause()]  # the verdict comes 0.4 s after the user stopped
    assert await played(BackchannelParams(**knobs, hard_deadline_ms=300), late) == []
    assert len(await played(BackchannelParams(**knobs, hard_deadline_ms=600), late)) == 1
