"""Concurrent Realtime sessions against one `run-pipeline` server.

Starts `run-pipeline` (a separate process, so its CPU and memory are its own), then for each
N opens N WebSocket sessions that each speak T questions at real time (Piper voice, 24 kHz
PCM, 20 ms chunks, 2.5 s of silence after each). Prints per N: voice-to-voice p50/p95 (end
of the user's speech → first reply audio delta), event lag p99 (how late
`speech_stopped` arrives after the VAD's own silence window), server CPU % and RSS per
session, and dropped sessions (a connection error, or a question with no reply).

    python benchmarks/realtime_sessions.py --sessions 1 2 4 --turns 3
    python benchmarks/realtime_sessions.py --instant   # test-double LLM/TTS: the framework's own cost
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
    asyncio.run(run(parser.parse_args()))
