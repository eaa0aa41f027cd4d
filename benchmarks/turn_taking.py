"""Turn-taking over the OpenAI Realtime protocol: false cut-offs, lost words, reply latency.

    python benchmarks/turn_taking.py                               # starts configs/nova.yaml itself
    python benchmarks/turn_taking.py --pause 1.2                   # every mid-sentence pause 1.2 s
    python benchmarks/turn_taking.py --url wss://api.openai.com/v1/realtime?model=gpt-realtime \\
        --api-key "$OPENAI_API_KEY" --voice marin                  # the same items, a hosted provider

Each item is spoken by Piper (the `piper` extra) and streamed at real time, in 20 ms
chunks, into a fresh session with server-side turn detection. Items: plain sentences,
sentences with a mid-sentence pause (0.6–1.5 s, or ``--pause``), a name and a comma
("Nova, …"), and two sentences in a row. Per item:

- cut-off: the server ended the user's turn (``input_audio_buffer.committed``) or created a
  response before the item's last speech sample was sent;
- lost words: words of the script that no user transcript of the session holds (the
  deletions of a word alignment, so a misheard word is not counted as lost);
- latency: last speech sample sent → first reply audio delta, for items not cut off.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import random
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RATE = 24000
CHUNK = RATE // 50  # 20 ms

# (kind, parts): parts are spoken with a pause between them.
ITEMS = [
    ("plain", ["What is the capital of France?"]),
    ("plain", ["Tell me something nice about the sea."]),
    ("plain", ["I had a long day at work and I am tired."]),
    ("plain", ["Do you like music?"]),
    ("pause", ["I was thinking that maybe", "we could go to the beach tomorrow."]),
    ("pause", ["My favourite thing to cook is", "a big pot of vegetable soup."]),
    ("pause", ["Can you tell me", "a short story about a dragon?"]),
    ("pause", ["When I was a child I lived", "in a small town near the mountains."]),
    ("pause", ["So what I really want to know is", "whether you like rainy days."]),
    ("pause", ["I went to the market and bought", "some apples and a loaf of bread."]),
    ("name", ["Nova,", "tell me about the moon."]),
    ("name", ["Nova,", "what should I read next?"]),
    ("two", ["Good evening Nova.", "What did you do today?"]),
    ("two", ["I love autumn.", "Do you have a favourite season?"]),
    ("plain", ["Could you recommend a good movie for tonight?"]),
    ("plain", ["Honestly I think cats are better than dogs."]),
    ("pause", ["If it rains this weekend", "we should stay home and bake cookies."]),
    ("pause", ["The thing about my brother is", "that he never listens to anyone."]),
    ("name", ["Nova,", "do you remember where I live?"]),
    ("two", ["That was a lovely story.", "Can you tell me another one?"]),
]
GAPS = {"name": (0.5, 0.8), "two": (0.35, 0.6), "pause": (0.6, 1.5)}


CONTRACTIONS = {"i'm": "i am", "you're": "you are", "it's": "it is", "that's": "that is", "we're": "we are",
                "they're": "they are", "i've": "i have", "i'll": "i will", "don't": "do not", "can't": "can not",
                "won't": "will not", "isn't": "is not", "let's": "let us", "what's": "what is"}


def words(text: str) -> list[str]:
    """The words of ``text``, contractions spelt out ("I'm" is not "am" lost)."""
    out: list[str] = []
    for word in re.findall(r"[a-z0-9']+", text.lower().replace("\u2019", "'")):
        out += CONTRACTIONS.get(word, word).split()
    return out


def deletions(reference: list[str], hypothesis: list[str]) -> int:
    """Reference words with no counterpart in the hypothesis (Levenshtein alignment)."""
    rows = [[(j, 0) for j in range(len(hypothesis) + 1)]]  # (cost, deletions)
    for i, r in enumerate(reference, 1):
        row = [(i, i)]
        for j, h in enumerate(hypothesis, 1):
            sub = rows[-1][j - 1]
            options = [(sub[0] + (r != h), sub[1]), (rows[-1][j][0] + 1, rows[-1][j][1] + 1),
                       (row[j - 1][0] + 1, row[j - 1][1])]
            row.append(min(options))
        rows.append(row)
    return rows[-1][-1][1]


@dataclass
class Outcome:
    kind: str
    script: str
    cut_off: bool = False
    lost: int = 0
    latency_ms: float | None = None
    transcripts: list[str] = field(default_factory=list)
    responses: int = 0
    stages: list[dict] = field(default_factory=list)  # the server's cadence.turn.latency events


def synthesize(parts: list[str], gap: float, voice) -> tuple[np.ndarray, float]:
    """The item's audio at 24 kHz and the time (s) of its last speech sample."""
    import soxr

    pieces = []
    for index, part in enumerate(parts):
        audio = np.concatenate([c.audio_float_array for c in voice.synthesize(part)])
        audio = soxr.resample(audio, voice.config.sample_rate, RATE)
        # Piper pads each sentence with silence; trim it so the pause is the one we chose.
        loud = np.flatnonzero(np.abs(audio) > 0.01)
        audio = audio[max(0, loud[0] - 480): loud[-1] + 480] if loud.size else audio
        pieces.append(audio)
        if index < len(parts) - 1:
            pieces.append(np.zeros(int(RATE * gap), dtype=np.float32))
    speech = np.concatenate(pieces)
    pcm = (np.clip(speech, -1, 1) * 32767).astype(np.int16)
    return pcm, len(pcm) / RATE


async def run_item(url: str, headers: dict, voice_name: str | None, kind: str, parts: list[str],
                   pcm: np.ndarray, speech_end: float, tail_secs: float) -> Outcome:
    import websockets

    outcome = Outcome(kind, " ".join(parts))
    session: dict = {"type": "realtime", "providerData": {"turn_latency": True},
                     "audio": {"input": {"format": {"type": "audio/pcm", "rate": RATE},
                                                             "turn_detection": {"type": "server_vad"}}}}
    if voice_name:
        session["audio"]["output"] = {"voice": voice_name}
    async with websockets.connect(url, additional_headers=headers, max_size=None) as ws:
        await ws.send(json.dumps({"type": "session.update", "session": session}))
        t0 = time.monotonic()
        first_audio: float | None = None
        created: list[float] = []
        committed: list[float] = []
        done = asyncio.Event()

        async def receive() -> None:
            nonlocal first_audio
            async for message in ws:
                event = json.loads(message)
                kind_ = event.get("type", "")
                now = time.monotonic() - t0
                if kind_ == "response.created":
                    created.append(now)
                elif kind_ == "input_audio_buffer.committed":
                    committed.append(now)
                elif kind_ in ("response.output_audio.delta", "response.audio.delta") and first_audio is None:
                    first_audio = now
                elif kind_ == "conversation.item.input_audio_transcription.completed":
                    outcome.transcripts.append(event.get("transcript", ""))
                elif kind_ == "response.done" and now > speech_end:
                    done.set()
                elif kind_ == "cadence.turn.latency":
                    outcome.stages.append(event.get("latency_ms", {}))
                elif kind_ == "error":
                    print(f"  error: {event.get('error')}", file=sys.stderr)

        receiver = asyncio.create_task(receive())
        samples = np.concatenate([pcm, np.zeros(int(RATE * tail_secs), dtype=np.int16)])
        for sent, start in enumerate(range(0, len(samples), CHUNK), start=1):
            chunk = samples[start:start + CHUNK].tobytes()
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(chunk).decode()}))
            await asyncio.sleep(max(0.0, t0 + sent * 0.02 - time.monotonic()))
            if done.is_set() and sent * 0.02 > speech_end + 1.0:
                break
        try:
            await asyncio.wait_for(done.wait(), 20)
        except TimeoutError:
            pass
        await asyncio.sleep(0.5)  # a late transcript
        receiver.cancel()
    outcome.responses = len(created)
    outcome.cut_off = any(t < speech_end for t in (*created, *committed))
    outcome.lost = deletions(words(outcome.script), words(" ".join(outcome.transcripts)))
    if not outcome.cut_off and first_audio is not None:
        outcome.latency_ms = (first_audio - speech_end) * 1000
    return outcome


def start_nova() -> tuple[subprocess.Popen, str]:
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import start_server  # the test suite's launcher: a free port, its output drained

    return start_server(ROOT / "configs" / "nova.yaml")


async def main(args: argparse.Namespace) -> None:
    from cadence.models import ModelStore

    voice = ModelStore().piper_voice("en_US-joe-medium")
    process = None
    url = args.url
    if url is None:
        process, base = start_nova()
        url = base.replace("http://", "ws://") + "/v1/realtime"
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    rng = random.Random(args.seed)
    outcomes: list[Outcome] = []
    try:
        for _ in range(args.rounds):
            for kind, parts in ITEMS:
                gap = args.pause if (args.pause and kind == "pause") else rng.uniform(*GAPS.get(kind, (0, 0)))
                pcm, speech_end = synthesize(parts, gap, voice)
                outcome = await run_item(url, headers, args.voice, kind, parts, pcm, speech_end, args.tail)
                outcomes.append(outcome)
                mark = "CUT" if outcome.cut_off else "ok "
                latency = f"{outcome.latency_ms:6.0f} ms" if outcome.latency_ms is not None else "     - ms"
                print(f"{mark} {kind:5} gap {gap:.2f}s  {latency}  lost {outcome.lost}  responses {outcome.responses}"
                      f"  {outcome.script!r} → {' | '.join(outcome.transcripts)!r}", flush=True)
    finally:
        if process is not None:
            process.terminate()
            process.wait(30)
    print()
    for kind in ("plain", "pause", "name", "two"):
        group = [o for o in outcomes if o.kind == kind]
        if group:
            print(f"{kind:5}: cut-offs {sum(o.cut_off for o in group)}/{len(group)}, lost words"
                  f" {sum(o.lost for o in group)}/{sum(len(words(o.script)) for o in group)}")
    latencies = sorted(o.latency_ms for o in outcomes if o.latency_ms is not None)
    if latencies:
        p90 = latencies[min(len(latencies) - 1, int(0.9 * len(latencies)))]
        print(f"end of speech → first audio: p50 {statistics.median(latencies):.0f} ms, p90 {p90:.0f} ms"
              f" ({len(latencies)} items)")
    stages: dict[str, list[float]] = {}
    for outcome in outcomes:
        for report in outcome.stages:
            for name, value in report.items():
                stages.setdefault(name, []).append(value)
    if stages:
        print("server-side stages (cadence.turn.latency), p50: "
              + ", ".join(f"{name} {statistics.median(values):.0f} ms" for name, values in stages.items()))
    print(f"false cut-offs {sum(o.cut_off for o in outcomes)}/{len(outcomes)}, lost words"
          f" {sum(o.lost for o in outcomes)}/{sum(len(words(o.script)) for o in outcomes)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a Realtime WebSocket URL (default: start configs/nova.yaml)")
    parser.add_argument("--api-key", help="sent as Authorization: Bearer")
    parser.add_argument("--voice", help="the session's output voice")
    parser.add_argument("--pause", type=float, help="every mid-sentence pause this long (s)")
    parser.add_argument("--rounds", type=int, default=1, help="times through the item set")
    parser.add_argument("--tail", type=float, default=4.0, help="silence streamed after each item (s)")
    parser.add_argument("--seed", type=int, default=1)
    asyncio.run(main(parser.parse_args()))
