"""Concurrent Realtime sessions against one `run-pipeline` server.

Starts `run-pipeline` (a separate process, so its CPU and memory are its own), then for each
N opens N WebSocket sessions that each speak T questions at real time (Piper voice, 24 kHz
PCM, 20 ms chunks, 2.5 s of silence after each). Prints per N: voice-to-voice p50/p95 (end
of the user's speech → first reply audio delta), event lag p99 (how late
`speech_stopped` arrives after the VAD's own silence window), server CPU % and RSS per
session, and dropped sessions (a connection error, or a question with no reply).

    python benchmarks/realtime_sessions.py --sessions 1 2 4 --turns 3
    python benchmarks/realtime_sessions.py --instant   # test-double LLM/TTS: the framework's own cost
    python benchmarks/realtime_sessions.py --listeners 1 10 50 --seconds 30

``--listeners N``: N sessions that only listen, each streaming room noise (about -60 dBFS,
never speech) at real time in 20 ms appends, as an open microphone in a quiet room does.
Prints the server's CPU % per listening session and the p99 event lag: how long a
``session.update`` takes to come back as ``session.updated`` on a listening session, sent
once a second on each (the loop's responsiveness while it carries N audio streams).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import websockets

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from churn_client import proc_stats  # noqa: E402  (shared with the churn test)
RATE = 24000
CHUNK = RATE // 50  # 20 ms
QUESTIONS = ["What is the capital of France?", "Tell me something about the ocean.",
             "What do you like to do on weekends?", "How are you feeling today?"]


def spoken(questions: list[str]) -> list[np.ndarray]:
    import soxr

    from cadence.models import ModelStore

    voice = ModelStore().piper_voice("en_US-joe-medium")
    out = []
    for question in questions:
        audio = np.concatenate([c.audio_float_array for c in voice.synthesize(question)])
        pcm = (np.clip(soxr.resample(audio, voice.config.sample_rate, RATE), -1, 1) * 32767).astype(np.int16)
        loud = np.nonzero(np.abs(pcm) > 500)[0]
        out.append(pcm[: loud[-1] + 1])  # end exactly where the speech ends: that is what v2v counts from
    return out


def config_file(instant: bool) -> Path:
    text = (ROOT / "configs" / "nova.yaml").read_text()
    if instant:
        text = re.sub(r"  - type: llm\n(    .*\n)*", "  - type: doubles:InstantLLM\n", text)
        text = re.sub(r"  - type: tts.*\n(    .*\n)*", "  - type: doubles:InstantTTS\n", text)
    path = Path(tempfile.mkdtemp()) / "bench.yaml"
    path.write_text(text)
    return path


def start_server(config: Path) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}
    exe = Path(sys.executable).parent / "run-pipeline"
    proc = subprocess.Popen([str(exe), str(config), "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    while line := proc.stdout.readline():
        match = re.search(r"serving on http://(\S+?) ", line)
        if match:
            return proc, match.group(1)
    raise SystemExit(f"server did not start: {proc.stdout.read()}")


async def session(address: str, questions: list[np.ndarray], silence_ms: int, results: dict) -> None:
    """One client: speak each question at real time, note when replies and events arrive."""
    marks: dict[str, list[float]] = {"speech_end": [], "first_audio": [], "stopped": []}
    async with websockets.connect(f"ws://{address}/v1/realtime?model=cadence", max_size=2**24) as ws:
        json.loads(await ws.recv())  # session.created
        answered = asyncio.Event()

        async def receive():
            waiting = False
            async for message in ws:
                event = json.loads(message)
                if event["type"] == "input_audio_buffer.speech_stopped":
                    marks["stopped"].append(time.monotonic())
                elif event["type"] == "response.created":
                    waiting = True
                elif event["type"] == "response.output_audio.delta" and waiting:
                    marks["first_audio"].append(time.monotonic())
                    waiting = False
                elif event["type"] == "response.done":
                    answered.set()

        reader = asyncio.create_task(receive())
        silence = np.zeros(RATE * 5, dtype=np.int16)
        t0, sent = time.monotonic(), 0
        for question in questions:
            answered.clear()
            pcm = np.concatenate([question, silence]).tobytes()
            for i in range(0, len(pcm), CHUNK * 2):
                await ws.send(json.dumps({"type": "input_audio_buffer.append",
                                          "audio": base64.b64encode(pcm[i:i + CHUNK * 2]).decode()}))
                sent += 1
                if i == len(question) * 2 // (CHUNK * 2) * (CHUNK * 2):
                    marks["speech_end"].append(time.monotonic())
                await asyncio.sleep(max(0.0, t0 + sent * 0.02 - time.monotonic()))
                if answered.is_set() and i > len(question) * 2 + RATE:  # reply done and 0.5 s of quiet sent
                    break
            if not answered.is_set():
                await asyncio.wait_for(answered.wait(), 30)
        reader.cancel()
    results["voice_to_voice"] += [a - e for e, a in zip(marks["speech_end"], marks["first_audio"])]
    results["event_lag"] += [s - e - silence_ms / 1000 for e, s in zip(marks["speech_end"], marks["stopped"])]
    results["answered"] += len(marks["first_audio"])


async def listener(address: str, seconds: float, chunk_ms: int, lags: list[float], errors: list[str]) -> None:
    """One open microphone in a quiet room: noise at real time, a session.update a second."""
    rng = np.random.default_rng(len(lags) + len(errors))
    step = RATE * chunk_ms // 1000
    chunks = [json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(
        (rng.normal(0, 30, step)).astype(np.int16).tobytes()).decode()}) for _ in range(16)]
    async with websockets.connect(f"ws://{address}/v1/realtime?model=cadence", max_size=2**24) as ws:
        json.loads(await ws.recv())  # session.created
        asked: dict[str, float] = {}

        async def receive():
            async for message in ws:
                event = json.loads(message)
                if event["type"] == "session.updated" and asked:  # answered in order
                    lags.append(time.monotonic() - asked.pop(next(iter(asked))))
                elif event["type"] == "error":
                    errors.append(event["error"].get("message", "?"))
                elif event["type"] in ("input_audio_buffer.speech_started", "response.created"):
                    errors.append(f"room noise was taken for speech ({event['type']})")

        reader = asyncio.create_task(receive())
        t0 = time.monotonic()
        sent = 0
        await asyncio.sleep(rng.uniform(0, chunk_ms / 1000))  # sessions' chunks do not all land at once
        while (now := time.monotonic()) - t0 < seconds:
            await ws.send(chunks[sent % len(chunks)])
            sent += 1
            if sent % (1000 // chunk_ms) == 0:
                key = f"lag{sent}"
                asked[key] = time.monotonic()
                await ws.send(json.dumps({"type": "session.update", "event_id": key,
                                          "session": {"type": "realtime", "instructions": "You are Nova."}}))
            await asyncio.sleep(max(0.0, t0 + sent * chunk_ms / 1000 - time.monotonic()))
        reader.cancel()


async def run_listeners(args: argparse.Namespace) -> None:
    proc, address = start_server(config_file(args.instant))
    try:
        print(f"\nidle listening: room noise at real time in {args.chunk_ms} ms appends, {args.seconds:g} s")
        print(f"  {'N':>3} {'CPU %/sess':>10} {'CPU % total':>11} {'lag p50':>8} {'lag p99':>8} {'RSS MB/sess':>11} {'errors':>7}")
        for n in args.listeners:
            lags: list[float] = []
            errors: list[str] = []
            _, rss0 = proc_stats(proc.pid)
            tasks = [asyncio.create_task(listener(address, args.seconds + 4, args.chunk_ms, lags, errors))
                     for _ in range(n)]
            await asyncio.sleep(4)  # every session open and streaming before the window starts
            cpu0, t0 = proc_stats(proc.pid)[0], time.monotonic()
            await asyncio.sleep(args.seconds)
            cpu = (proc_stats(proc.pid)[0] - cpu0) / (time.monotonic() - t0) * 100
            _, rss = proc_stats(proc.pid)
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
            errors += [f"{type(o).__name__}: {o}" for o in outcomes if isinstance(o, Exception)]
            lag = sorted(lags) or [float("nan")]
            print(f"  {n:>3} {cpu / n:9.2f}% {cpu:10.1f}% {statistics.median(lag) * 1000:7.0f}ms "
                  f"{lag[min(len(lag) - 1, int(len(lag) * 0.99))] * 1000:7.0f}ms {(rss - rss0) / n:11.1f} {len(errors):>7}")
            for error in sorted(set(errors))[:5]:
                print(f"      {error}")
            await asyncio.sleep(3)  # the sessions' teardown is not the next N's cost
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def run(args: argparse.Namespace) -> None:
    config = config_file(args.instant)
    proc, address = start_server(config)
    try:
        questions = spoken((QUESTIONS * args.turns)[: args.turns])
        idle_cpu, idle_rss = proc_stats(proc.pid)
        mode = "instant test-double LLM/TTS" if args.instant else "embedded stack (SmolLM2 + Piper)"
        print(f"\nrealtime sessions, {mode}, {args.turns} spoken turns per session")
        print(f"  {'N':>3} {'v2v p50':>8} {'v2v p95':>8} {'lag p99':>8} {'CPU %/sess':>10} {'RSS MB/sess':>11} {'dropped':>8}")
        for n in args.sessions:
            results = {"voice_to_voice": [], "event_lag": [], "answered": 0}
            cpu0, _ = proc_stats(proc.pid)
            t0 = time.monotonic()
            peak_rss = 0.0

            async def watch():
                nonlocal peak_rss
                while True:
                    peak_rss = max(peak_rss, proc_stats(proc.pid)[1])
                    await asyncio.sleep(0.2)

            watcher = asyncio.create_task(watch())
            outcomes = await asyncio.gather(*(session(address, questions, 200, results) for _ in range(n)),
                                            return_exceptions=True)
            watcher.cancel()
            cpu = (proc_stats(proc.pid)[0] - cpu0) / (time.monotonic() - t0) * 100
            dropped = sum(isinstance(o, Exception) for o in outcomes) + (n * args.turns - results["answered"]) // args.turns
            v2v = sorted(results["voice_to_voice"]) or [float("nan")]
            lag = sorted(results["event_lag"]) or [float("nan")]
            p95 = v2v[min(len(v2v) - 1, int(len(v2v) * 0.95))]
            p99 = lag[min(len(lag) - 1, int(len(lag) * 0.99))]
            print(f"  {n:>3} {statistics.median(v2v) * 1000:7.0f}ms {p95 * 1000:7.0f}ms {p99 * 1000:7.0f}ms "
                  f"{cpu / n:9.0f}% {(peak_rss - idle_rss) / n:11.1f} {dropped:>8}")
            for outcome in outcomes:
                if isinstance(outcome, Exception):
                    print(f"      dropped: {type(outcome).__name__}: {outcome}")
        print(f"  server idle: RSS {idle_rss:.0f} MB, CPU {idle_cpu:.1f} s at start")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--instant", action="store_true", help="instant test-double LLM/TTS from tests/doubles.py")
    parser.add_argument("--listeners", type=int, nargs="+", help="listening-only sessions (room noise), per run")
    parser.add_argument("--seconds", type=float, default=30, help="--listeners: the measured window")
    parser.add_argument("--chunk-ms", type=int, default=20, help="--listeners: audio per append")
    args = parser.parse_args()
    asyncio.run(run_listeners(args) if args.listeners else run(args))
