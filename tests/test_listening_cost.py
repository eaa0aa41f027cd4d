"""A listening session's audio path, made cheap without changing what it hears: batched
Silero scores exactly what pipecat's own analyzer scores, the audio stops after the last
stage that hears it, and observers are spared it (real Silero, real Piper speech)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
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


@pytest.mark.parametrize("chunk_ms", [20, 32, 64])  # a window in some chunks only; one each; two each
async def test_batched_silero_decides_exactly_as_pipecats_own_analyzer(store, chunk_ms):
    pcm = speech_pcm(store)
    # six sessions, each its audio shifted (different windows in every batch), one joining late
    shifts = [0, 3_200, 7_000, 11_111, 20_000, 40_000]
    audio = [pcm[2 * (s // 2):] + bytes(2 * (s // 2)) for s in shifts]
    references, ours = [], []
    for _ in shifts:
        reference = SileroVADAnalyzer(params=PARAMS)  # pipecat's: its own model, its own thread
        reference.set_sample_rate(16000)
        reference._volume_tracker.update(bytes(2 * int(16000 * VOLUME_WINDOW_SECS)), 16000)  # as ours starts
        references.append(reference)
        analyzer = SharedSileroVADAnalyzer(session=store.silero_session(), params=PARAMS)
        analyzer.set_sample_rate(16000)
        ours.append(analyzer)
    batcher = batcher_for(store.silero_session())
    runs, windows = batcher.runs, batcher.windows
    step, late = 32 * chunk_ms, 50  # bytes per chunk; the last session starts at chunk 50
    expected, got = [[] for _ in shifts], [[] for _ in shifts]
    for k, i in enumerate(range(0, len(pcm), step)):
        chunks = [a[i:i + step] for a in audio]
        for n, (reference, chunk) in enumerate(zip(references, chunks)):
            if n < len(shifts) - 1 or k >= late:
                expected[n].append(await reference.analyze_audio(chunk))
        live = [(n, a) for n, a in enumerate(ours) if n < len(shifts) - 1 or k >= late]
        for (n, _), state in zip(live, await asyncio.gather(*(a.analyze_audio(chunks[n]) for n, a in live))):
            got[n].append(state)
    starts = lambda states: sum(a != VADState.SPEAKING and b == VADState.SPEAKING for a, b in zip(states, states[1:]))
    for n in range(len(shifts)):
        assert VADState.SPEAKING in expected[n]  # the speech was heard
        if chunk_ms <= 32:  # one window a chunk at most: exactly pipecat's decisions and state
            assert got[n] == expected[n], f"session {n} decided otherwise than pipecat"
            assert float(np.abs(references[n]._model._state - ours[n]._model._state).max()) < 1e-6
        else:  # two a chunk: a model reset between them applies a chunk later here, so scores may
            # differ slightly after one; the same speech, starting in the same places, is heard
            assert starts(got[n]) == starts(expected[n]), (n, got[n], expected[n])
            assert sum(a != b for a, b in zip(got[n], expected[n])) <= len(got[n]) // 50, n
    assert batcher.runs - runs < (batcher.windows - windows) / 3  # several sessions' windows per run


def test_audio_stops_after_the_last_stage_that_hears_it(tmp_path, store, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "tests"))
    names = lambda factory: [type(p).__name__ for p in factory.build(InputAudioEnd(), InputAudioEnd()).processors]
    nova = names(PipelineFactory(load_and_validate(str(ROOT / "configs" / "nova.yaml")), store))
    assert nova.index("InputAudioEnd") == nova.index("UserTurnProcessor") + 1  # after the turn stage
    # a plugin may read audio: it hears it wherever it sits
    plugin = names(PipelineFactory(load_and_validate(str(config_with_stage(tmp_path, "  - type: custom_stage:Lowercase"))),
                                   store))
    assert plugin.index("InputAudioEnd") == plugin.index("Lowercase") + 1
    # no turn stage: pipecat's own end-of-turn rule (smart-turn, in the user aggregator) hears it
    text = (ROOT / "configs" / "nova.yaml").read_text()
    start = text.index("  - type: turn")
    no_turn = tmp_path / "no-turn.yaml"
    no_turn.write_text(text[:start] + text[text.index("  - type: context"):])
    plain = names(PipelineFactory(load_and_validate(str(no_turn)), store))
    assert "UserTurnProcessor" not in plain
    assert "InputAudioEnd" not in plain[:plain.index("LLMUserAggregator") + 1]


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


async def test_a_window_the_model_cannot_take_fails_alone_and_a_failed_run_scores_silence(store):
    good = SharedSileroVADAnalyzer(session=store.silero_session(), params=PARAMS)
    good.set_sample_rate(16000)
    batcher = batcher_for(store.silero_session())
    windows = batcher.windows
    scores = await asyncio.gather(batcher.score(good._model, bytes(999), 16000),  # not a window
                                  batcher.score(good._model, speech_pcm(store)[64000:65024], 16000))
    assert scores[0] == 0.0 and batcher.windows == windows + 1  # the good one beside it is still scored
    assert 0.0 < scores[1] <= 1.0

    class Broken:
        def run(self, *args):
            raise RuntimeError("onnx down")

    broken = SharedSileroVADAnalyzer(session=Broken(), params=PARAMS)
    broken.set_sample_rate(16000)
    assert await broken.analyze_audio(bytes(1024)) == VADState.QUIET  # as pipecat: an error logged, silence
