"""The input queue on its own (no pipeline): bursts are paced and wait for replies, live
audio (pre-roll, jitter) is never held behind a reply, nothing queued is lost."""

from __future__ import annotations

import asyncio
import base64
import time

import numpy as np
import pytest

from cadence.transports.realtime import input_audio
from cadence.transports.realtime.input_audio import InputAudio
from cadence.transports.realtime.protocol import ProtocolError

WIRE = 24000


def b64(secs: float) -> str:
    return base64.b64encode(np.full(int(WIRE * secs), 100, dtype=np.int16).tobytes()).decode()


class Feed:
    def __init__(self):
        self.fed: list[tuple[float, int]] = []  # (when, bytes)

    async def __call__(self, pcm: bytes) -> None:
        self.fed.append((time.monotonic(), len(pcm)))

    def secs(self) -> float:
        return sum(n for _, n in self.fed) / 2 / 16000


class Reply:
    """A reply in progress from ``since`` (monotonic) until ``end()``."""

    def __init__(self):
        self.since: float | None = None

    def __call__(self) -> float | None:
        return self.since


async def test_live_audio_after_a_pre_roll_is_fed_at_once_even_during_a_reply():
    feed, reply = Feed(), Reply()
    audio = InputAudio(16000, feed, replying_since=reply)
    await audio.append(b64(0.5), "audio/pcm", hold=False)  # a microphone's pre-roll, sent at connect
    await asyncio.sleep(0.05)
    reply.since = time.monotonic()  # a reply begins; the user keeps talking (barge-in must get through)
    sent, behind = 0.5, []
    for _ in range(25):  # 0.5 s of live 20 ms chunks
        await audio.append(b64(0.02), "audio/pcm", hold=False)
        sent += 0.02
        await asyncio.sleep(0.02)
        behind.append(sent - feed.secs())  # what was sent and not yet fed (the resampler keeps a few ms)
    await audio.close()
    assert feed.secs() > 0.9, feed.secs()  # pre-roll and live audio, not held for the reply
    assert max(behind) < 0.15, behind


async def test_a_burst_is_paced_and_waits_for_the_reply_in_progress():
    feed, reply = Feed(), Reply()
    audio = InputAudio(16000, feed, replying_since=reply)
    await audio.append(b64(3.0), "audio/pcm", hold=False)  # a recording in one event
    await asyncio.sleep(0.05)
    reply.since = time.monotonic()  # its first turn is being answered
    held = feed.secs()
    assert held <= input_audio.BURST_LEAD_SECS + 0.1, held  # paced from the start
    await asyncio.sleep(0.4)
    assert feed.secs() == held and audio.queued_secs > 2.5  # queued behind the reply, not dropped
    reply.since = None  # the reply ended
    started = time.monotonic()
    await asyncio.sleep(1.0)
    fed = feed.secs() - held
    assert 0.9 <= fed <= 1.0 + input_audio.BURST_LEAD_SECS + 0.15, fed  # at the recorded pace
    while audio.queued_secs > 0:
        await asyncio.sleep(0.05)
    assert time.monotonic() - started >= 3.0 - held - input_audio.BURST_LEAD_SECS - 0.1
    assert feed.secs() == pytest.approx(3.0, abs=0.05)  # all of it, in frames of one VAD window
    assert {n for _, n in feed.fed[:-1]} == {1024}  # the last holds what the resampler gave
    await audio.close()


async def test_turning_detection_off_moves_the_queue_into_the_commit_buffer():
    feed = Feed()
    audio = InputAudio(16000, feed)
    await audio.append(b64(4.0), "audio/pcm", hold=False)
    await asyncio.sleep(0.1)
    audio.hold_queued()
    fed = feed.secs()
    assert audio.queued_secs == 0
    assert len(audio.take()) / 2 / 16000 + fed == pytest.approx(4.0, abs=0.05)  # nothing lost
    await asyncio.sleep(0.1)
    assert feed.secs() == fed  # and nothing more fed
    await audio.close()


async def test_the_queue_bound_refuses_a_chunk_and_clear_empties_the_queue(monkeypatch):
    monkeypatch.setattr(input_audio, "MAX_QUEUE_SECS", 2)
    audio = InputAudio(16000, Feed())
    await audio.append(b64(1.5), "audio/pcm", hold=False)
    with pytest.raises(ProtocolError) as info:
        await audio.append(b64(1.0), "audio/pcm", hold=False)
    assert info.value.code == "audio_queue_full" and info.value.param == "audio"
    assert "at most 2 s" in str(info.value)
    audio.clear()
    assert audio.queued_secs == 0
    await audio.append(b64(1.0), "audio/pcm", hold=False)  # room again
    await audio.close()


async def test_audio_short_of_a_frame_is_fed_when_no_more_comes():
    feed = Feed()
    audio = InputAudio(16000, feed)
    for _ in range(5):  # 100 ms in 20 ms chunks
        await audio.append(b64(0.02), "audio/pcm", hold=False)
    await asyncio.sleep(0.01)
    assert feed.fed and {n for _, n in feed.fed} == {1024}  # whole frames of one VAD window so far
    await asyncio.sleep(input_audio.PARTIAL_WAIT_SECS + 0.1)
    assert sum(n for _, n in feed.fed) % 1024  # then what was short of a frame
    assert 0.1 - 0.045 <= feed.secs() <= 0.1  # all of it but what the resampler holds (≤ 40 ms)
    await audio.close()
