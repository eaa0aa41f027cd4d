"""Hostile input at scale: the deterministic fuzz corpus (tests/fuzz_events.py) against one
Realtime session of the embedded default, event by event. Prints how many events were
answered by an error naming them, by their success, or not at all, whether the session and
the server survived, and the time per event.

    python benchmarks/fuzz_realtime.py --events 10000 --seed 7
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

SUCCESSES = {"session.updated", "conversation.item.added", "conversation.item.deleted", "conversation.item.retrieved",
             "conversation.item.truncated", "response.created", "input_audio_buffer.committed",
             "output_audio_buffer.cleared"}


async def main(events: int, seed: int) -> int:
    import websockets

    from cadence.config import load_and_validate
    from cadence.pipelines.builder import PipelineFactory
    from cadence.server import create_app
    from cadence.transports.realtime import rate
    from fuzz_events import corpus, param_matches
    from servers import serving

    rate.EVENTS_PER_SEC = 1_000_000  # measured event by event, not against the rate limit
    factory = PipelineFactory(load_and_validate(str(ROOT / "configs" / "nova.yaml")))
    factory.prepare()
    counts = {"error_named": 0, "error_unnamed": 0, "wrong_param": 0, "success": 0, "silent_ok": 0, "unanswered": 0}
    wrong: dict[tuple, int] = {}
    samples: list[float] = []
    async with serving(create_app(factory)) as base:
        async with websockets.connect(base.replace("http://", "ws://") + "/v1/realtime", max_size=None) as ws:
            json.loads(await ws.recv())
            await ws.send(json.dumps({"type": "session.update", "session": {
                "type": "realtime", "output_modalities": ["text"], "audio": {"input": {"turn_detection": None}}}}))
            while json.loads(await ws.recv())["type"] != "session.updated":
                pass
            for raw, event_id, param in corpus(events, seed):
                started = time.perf_counter()
                await ws.send(raw)
                if '"audio": ""' in raw and "input_audio_buffer.append" in raw:
                    counts["silent_ok"] += 1
                    continue
                while True:
                    try:
                        event = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    except TimeoutError:
                        counts["unanswered"] += 1
                        break
                    if event["type"] == "error":
                        named = event_id is None or event["error"].get("event_id") == event_id
                        counts["error_named" if named else "error_unnamed"] += 1
                        if not param_matches(param, event["error"].get("param")):
                            counts["wrong_param"] += 1
                            key = (param, event["error"].get("param"), event["error"].get("code"))
                            wrong[key] = wrong.get(key, 0) + 1
                        break
                    if event["type"] in SUCCESSES:
                        counts["success"] += 1
                        if event["type"] == "response.created":
                            while json.loads(await ws.recv())["type"] != "response.done":
                                pass
                        break
                samples.append(time.perf_counter() - started)
            await ws.send(json.dumps({"type": "conversation.item.create", "item": {
                "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello!"}]}}))
            await ws.send(json.dumps({"type": "response.create"}))
            while (event := json.loads(await asyncio.wait_for(ws.recv(), 60)))["type"] != "response.done":
                pass
            after = event["response"]["status"]
    print(f"{events} hostile events (seed {seed}): " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    for (expected, got, code), n in sorted(wrong.items(), key=lambda kv: -kv[1])[:15]:
        print(f"  wrong param x{n}: expected {expected}, got {got} ({code})")
    print(f"per event: median {statistics.median(samples) * 1000:.1f} ms, max {max(samples) * 1000:.0f} ms;"
          f" a normal turn after: {after}")
    return 0 if counts["unanswered"] == counts["error_unnamed"] == 0 and after == "completed" else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.events, args.seed)))
