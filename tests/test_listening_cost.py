"""A listening session's audio path, made cheap without changing what it hears: batched
Silero scores exactly what pipecat's own analyzer scores, the audio stops after the last
stage that hears it, and observers are spared it (real Silero, real Piper speech)."""

from __future__ import annotations

import asyncio

import numpy as np
import soxr
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams, VADState
from pipecat.audio.volume import VOLUME_WINDOW_SECS
from pipecat.frames.frames import InputAudioRawFrame
from pipecat.observers.base_observer import BaseObserver

from cadence.config import load_and_validate
from cadence.pipelines.audio_end import InputAudioEnd
from cadence.pipelines.builder import PipelineFactory
from cadence.processors.silero_shared import SharedSileroVADAnalyzer, batcher_for
from cadence.transports.realtime.session import RealtimeSession
from test_plugins import ROOT, config_with_stage

PARAMS = VADParams(confidence=0.7, start_secs=0.2, stop_secs=0.2, min_volume=0.6)


def speech_pcm(store) -> bytes:
    voice = store.piper_voice("en_US-joe-medium")
    speech = np.concatenate([c.audio_float_array for c in voice.synthesize(
        "Can you tell me a story? I like dragons, and the sea.")])
    speech = soxr.resample(speech, voice.config.sample_rate, 16000)
    noise = np.random.default_rng(1).normal(0, 0.001, 16000 * 2).astype(np.float32)
    audio = np.concatenate([noise, speech, noise, speech[: 16000 // 2], noise])  # two turns, the second cut
    return (np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes()


async def test_batched_silero_decides_exactly_as_pipecats_own_analyzer(store):
    pcm = speech_pcm(store)
    reference = SileroVADAnalyzer(params=PARAMS)  # pipecat's: its own model, its own thread
    reference.set_sample_rate(16000)
    reference._volume_tracker.update(bytes(2 * int(16000 * VOLUME_WINDOW_SECS)), 16000)  # as ours starts
    ours = [SharedSileroVADAnalyzer(session=store.silero_session(), params=PARAMS) for _ in range(6)]
    for analyzer in ours:
        analyzer.set_sample_rate(16000)
    batcher = batcher_for(store.silero_session())
    runs, windows = batcher.runs, batcher.windows
    expected, got = [], [[] for _ in ours]
    for i in range(0, len(pcm), 640):  # 20 ms chunks: a window completes in some, not others
        chunk = pcm[i:i + 640]
        expected.append(await reference.analyze_audio(chunk))
        for states, state in zip(got, await asyncio.gather(*(a.analyze_audio(chunk) for a in ours))):
            states.append(state)
    assert VADState.SPEAKING in expected and expected[-1] == VADState.QUIET  # the speech was heard, and ended
    assert all(states == expected for states in got)  # every session, every chunk, the same decision
    assert float(np.abs(reference._model._state - ours[0]._model._state).max()) == 0.0
    scored = batcher.windows - windows
    assert scored == len(ours) * (len(pcm) // 1024)  # every window scored once
    assert batcher.runs - runs <= scored / len(ours) * 1.05  # ... six sessions' windows per run


def test_audio_stops_after_the_last_stage_that_hears_it(tmp_path, store, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "tests"))
    names = lambda factory: [type(p).__name__ for p in factory.build(InputAudioEnd(), InputAudioEnd()).processors]
    nova = names(PipelineFactory(load_and_validate(str(ROOT / "configs" / "nova.yaml")), store))
    assert nova.index("InputAudioEnd") == nova.index("UserTurnProcessor") + 1  # after the turn stage
    # a plugin may read audio: it hears it wherever it sits
    plugin = names(PipelineFactory(load_and_validate(str(config_with_stage(tmp_path, "  - type: custom_stage:Lowercase"))),
                                   store))
    assert plugin.index("InputAudioEnd") == plugin.index("Lowercase") + 1


class AudioCounter(BaseObserver):
    def __init__(self, hears: bool):
        super().__init__()
        self.hears_input_audio = hears
        self.audio = self.other = 0

    async def on_push_frame(self, data):
        if isinstance(data.frame, InputAudioRawFrame):
            self.audio += 1
        else:
            self.other += 1


async def test_observers_are_spared_the_audio_unless_they_ask(nova_factory):
    sent = []

    async def send(event):
        sent.append(event)

    session = RealtimeSession(nova_factory, send, model=None, user_id=None)
    blind = AudioCounter(hears=False)
    session.pipeline.task.add_observer(blind)
    await session.start()
    try:
        for _ in range(25):
            await session.input._feed(bytes(1024))  # 32 ms frames straight to the pipeline
        await asyncio.sleep(0.5)
        assert blind.audio == 0 and blind.other > 0  # it saw the pipeline start, not a single audio frame
        hearing = AudioCounter(hears=True)
        session.pipeline.task.add_observer(hearing)
        for _ in range(25):
            await session.input._feed(bytes(1024))
        await asyncio.sleep(0.5)
        assert hearing.audio >= 25 * 4 and blind.audio == 0  # every push of each frame, to that one only
    finally:
        await session.close()
