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
    # Resampled to the output rate, padded to whole 80 ms blocks (no remainder left in a transport).
    assert 0.3 * 24000 * 2 * 0.97 <= len(out[0].audio) <= (0.3 + 0.08) * 24000 * 2
    assert len(out[0].audio) % (int(24000 * 0.08) * 2) == 0
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


async def test_phrases_are_bounded():
    from pydantic import ValidationError

    for phrases in (["x" * 33], [""], ["Mm."] * 9, []):
        with pytest.raises(ValidationError):
            BackchannelParams(phrases=phrases)


async def test_on_a_media_transport_it_plays_without_the_bot_speaking():
    """WebRTC's path: pipecat's output transport plays the frame, and it is no bot speech
    (no BotStartedSpeakingFrame, so no barge-in logic and no output_audio_buffer events)."""
    from pipecat.transports.base_transport import TransportParams

    from cadence.transports.realtime.transport import RealtimeOutputTransport

    written: list[bytes] = []

    async def on_audio(pcm: bytes) -> None:
        written.append(pcm)

    params = TransportParams(audio_out_enabled=True, audio_out_sample_rate=24000)
    out = RealtimeOutputTransport(params, on_audio=on_audio)  # no on_backchannel: plays it like a track
    frame = BackchannelAudioFrame(b"\x00\x10" * 4800, sample_rate=24000, num_channels=1, text="Mm-hm.")
    _, up = await run_test(out, frames_to_send=[frame, SleepFrame(0.5)], expected_down_frames=None)
    assert sum(len(w) for w in written) >= 9600 * 0.9
    assert not any(isinstance(f, BotStartedSpeakingFrame) for f in up), up


class FailingTTSDouble(FrameProcessor):
    """A TTS double whose phrases cannot be rendered."""

    async def render_phrase(self, text: str) -> tuple[bytes, int]:
        raise RuntimeError("voice unavailable")


async def test_a_phrase_that_cannot_be_rendered_is_reported_not_silently_dropped():
    from pipecat.frames.frames import ErrorFrame

    injector = BackchannelInjector(BackchannelParams(enabled=True, min_speech_ms=0, min_gap_ms=0, require_pause=True),
                                   tts=FailingTTSDouble())
    down, up = await run_test(injector, frames_to_send=[SleepFrame(0.05), UserStartedSpeakingFrame(), *speech(0.2),
                                                        *pause()], expected_down_frames=None)
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert errors and "voice unavailable" in errors[0].error and not errors[0].fatal
    assert not any(isinstance(f, BackchannelAudioFrame) for f in down)  # and the pipeline went on
