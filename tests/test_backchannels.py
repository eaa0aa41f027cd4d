"""Backchannels over the Realtime WebSocket (real models): in a ~20 s spoken monologue with
pauses, "mm-hm"s come as ``cadence.backchannel`` events whose count and spacing follow
``providerData.backchannel``; they end no turn, start no response, and enter no context
message or transcript."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import numpy as np
import websockets

from cadence.server import create_app
from servers import serving

RATE = 24000
MONOLOGUE = [
    ("So this morning I woke up really early", 0.8),
    ("and I decided to walk down to the river near my house", 1.2),
    ("because the weather was finally nice again", 0.7),
    ("and on the way I met an old friend from school", 1.0),
    ("who told me she is moving to another city next month", 1.2),
    ("and we talked for almost an hour about the old days", 0.8),
    ("and then I realised I was late for work", 0.9),
    ("so I ran all the way back home", 0.0),
]


async def _monologue(app, base: str, audio: np.ndarray, knobs: dict) -> tuple[list[tuple[float, dict]], list]:
    """Streams ``audio`` at real time into one session: its (arrival time from the first
    chunk sent, event) pairs, and its LLM context's messages once the reply is done."""
    events: list[tuple[float, dict]] = []
    async with websockets.connect(base.replace("http://", "ws://") + "/v1/realtime", max_size=None) as ws:
        # endOfTurnConfidenceThreshold 1: every pause waits the longest silence (3 s), so only
        # the monologue's end ends the turn and any other turn end would be the backchannels'.
        await ws.send(json.dumps({"type": "session.update", "session": {
            "type": "realtime", "audio": {"input": {"format": {"type": "audio/pcm", "rate": RATE}, "turn_detection": {
                "type": "server_vad", "endOfTurnConfidenceThreshold": 1, "maxEndOfTurnSilenceMs": 3000}}},
            "providerData": {"backchannel": {"enabled": True, **knobs}}}}))
        t0 = time.monotonic()

        async def receive():
            async for message in ws:
                events.append((time.monotonic() - t0, json.loads(message)))

        receiver = asyncio.create_task(receive())
        chunk = RATE // 50
        for sent, start in enumerate(range(0, len(audio), chunk), start=1):
            await ws.send(json.dumps({"type": "input_audio_buffer.append",
                                      "audio": base64.b64encode(audio[start:start + chunk].tobytes()).decode()}))
            await asyncio.sleep(max(0.0, t0 + sent * 0.02 - time.monotonic()))
        for _ in range(150):
            if any(e["type"] == "response.done" for _, e in events):
                break
            await asyncio.sleep(0.2)
        receiver.cancel()
        (session,) = app.state.realtime_sessions
        messages = list(session.pipeline.roles.llm_context.messages)
    return events, messages


def _silences(audio: np.ndarray, min_secs: float = 0.15) -> list[tuple[float, float]]:
    """(start, end) seconds of the quiet stretches in ``audio`` (20 ms frames under -40 dBFS)."""
    frames = audio[: len(audio) // 480 * 480].reshape(-1, 480).astype(np.float64)
    quiet = np.sqrt((frames ** 2).mean(axis=1)) < 0.01 * 32768
    spans, begin = [], None
    for i, q in enumerate([*quiet, False]):
        if q and begin is None:
            begin = i
        elif not q and begin is not None:
            if (i - begin) * 0.02 >= min_secs:
                spans.append((begin * 0.02, i * 0.02))
            begin = None
    return spans


async def test_backchannels_follow_the_knobs_and_never_take_the_turn(nova_factory, speak):
    parts, pauses, at = [], [], 0.0
    for text, pause in MONOLOGUE:
        parts += [speak(text, rate=RATE), np.zeros(int(RATE * pause), np.int16)]
        at += len(parts[-2]) / RATE
        pauses.append((at, at + pause))
        at += pause
    speech_end = sum(len(p) for p in parts) / RATE
    audio = np.concatenate([*parts, np.zeros(RATE * 5, np.int16)])
    assert speech_end > 18, speech_end  # a ~20 s monologue

    app = create_app(nova_factory)
    async with serving(app) as base:
        for knobs, expected in [({"min_gap_ms": 3000, "max_per_turn": 4, "eval_interval_ms": 400}, 4),
                                ({"min_gap_ms": 6000, "max_per_turn": 2, "min_speech_ms": 2000}, 2),
                                ({"require_pause": True, "min_gap_ms": 2000, "max_per_turn": 10}, None)]:
            events, messages = await _monologue(app, base, audio, knobs)
            types = [e["type"] for _, e in events]
            assert "error" not in types, [e for _, e in events if e["type"] == "error"]
            backchannels = [(t, e) for t, e in events if e["type"] == "cadence.backchannel"]
            times = [t for t, _ in backchannels]
            if expected is not None:
                assert len(backchannels) == expected, (knobs, times)
            else:  # in pauses only (any the VAD hears, the 7 between phrases among them): never over speech
                assert 4 <= len(backchannels) <= 12, times
                silences = _silences(audio)
                assert all(any(start < t < end + 0.4 for start, end in silences) for t in times), (times, silences)
                assert sum(any(start < t < end + 0.4 for t in times) for start, end in pauses[:-1]) >= 4
            assert all(later - earlier >= knobs["min_gap_ms"] / 1000 - 0.15 for earlier, later in zip(times, times[1:]))
            assert times[0] >= knobs.get("min_speech_ms", 800) / 1000, times
            for _, event in backchannels:
                assert event["text"] in ("Mm-hm.", "Yeah.", "Right.")
                assert 150 <= event["duration_ms"] <= 1500 and len(base64.b64decode(event["audio"])) > 1000
            # No turn ended, and no response began, before the monologue did.
            first_commit = next(t for t, e in events if e["type"] == "input_audio_buffer.committed")
            assert first_commit > speech_end, (first_commit, speech_end)
            # Only within the user's turn (its last pause, held open, included).
            assert all(t < min(first_commit, speech_end + 2.0) for t in times), (times, speech_end, first_commit)
            assert types.count("input_audio_buffer.committed") == 1 and types.count("response.created") == 1, types
            done = next(e for _, e in events if e["type"] == "response.done")["response"]
            assert done["status"] == "completed", done
            transcript = next(e for _, e in events
                              if e["type"] == "conversation.item.input_audio_transcription.completed")["transcript"]
            assert "mm" not in transcript.lower(), transcript
            assert not any(e["type"] == "response.output_audio.delta" and t < speech_end for t, e in events)
            assert [m["role"] for m in messages if m["role"] != "system"][-2:] == ["user", "assistant"], messages
            phrases = {e["text"] for _, e in backchannels}
            assert not any(str(m.get("content")).strip() in phrases for m in messages), messages
            user = " ".join(str(m.get("content")) for m in messages if m["role"] == "user").lower()
            assert not any(p.lower().strip(".") in user for p in phrases), user
