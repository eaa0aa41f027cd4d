"""A client that stops reading, against one `run-pipeline` server (the embedded stack).

Client B asks for a spoken reply every `--every` seconds; client A meanwhile takes a text
turn at a time and times it (request → `response.done`). Three phases of `--seconds` each:
A alone; B reading everything (the load B puts on the LLM and TTS); B never reading (its
socket's receive buffer small, its WebSocket queue one message). Prints A's median and max
text-turn latency per phase, the ratio of the non-reading phase to the reading one, the
server's RSS growth over the non-reading phase, and how B's connection ended (the server
closes a client that does not read once 8 MiB wait for it: 1008).

    python benchmarks/non_reading.py --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from churn_client import proc_stats  # noqa: E402
from realtime_sessions import config_file, start_server  # noqa: E402

TEXT_ONLY = {"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"]}}


def user_says(text: str) -> str:
    return json.dumps({"type": "conversation.item.create", "item": {
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}})


async def text_turns(url: str, until: float) -> list[float]:
    """Client A: one text turn after another until ``until``; each turn's latency."""
    latencies = []
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(json.dumps(TEXT_ONLY))
        while time.monotonic() < until:
            await ws.send(user_says("Say hello in five words."))
            started = time.monotonic()
            await ws.send(json.dumps({"type": "response.create"}))
            while json.loads(await ws.recv())["type"] != "response.done":
                pass
            latencies.append(time.monotonic() - started)
            await asyncio.sleep(0.5)
    return latencies


async def spoken_replies(url: str, until: float, every: float, reading: bool) -> str:
    """Client B: a spoken reply asked for every ``every`` s; reads them all, or none."""
    host, port = url.removeprefix("ws://").split("/")[0].rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    if not reading:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    async with websockets.connect(url, sock=sock, max_size=None, max_queue=1 if not reading else 16) as ws:
        drain = asyncio.create_task(_read_all(ws)) if reading else None
        try:
            while time.monotonic() < until:
                await ws.send(user_says("Tell me a long story about the sea."))
                await ws.send(json.dumps({"type": "response.create"}))
                await asyncio.sleep(every)
        except websockets.ConnectionClosed as closed:
            return f"closed by the server: {closed.rcvd.code if closed.rcvd else '?'} {closed.rcvd.reason if closed.rcvd else ''}"
        finally:
            if drain:
                drain.cancel()
    return "open to the end"


async def _read_all(ws) -> None:
    async for _ in ws:
        pass


async def main(seconds: float, every: float) -> None:
    proc, address = start_server(config_file(instant=False))
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    url = f"ws://{address}/v1/realtime"
    results = {}
    try:
        for phase in ("alone", "B reading", "B not reading"):
            until = time.monotonic() + seconds
            rss0 = proc_stats(proc.pid)[1]
            peak = [rss0]

            async def watch():
                while True:
                    peak[0] = max(peak[0], proc_stats(proc.pid)[1])
                    await asyncio.sleep(0.5)

            watcher = asyncio.create_task(watch())
            jobs = [text_turns(url, until)]
            if phase != "alone":
                jobs.append(spoken_replies(url, until, every, reading=phase == "B reading"))
            outcome = await asyncio.gather(*jobs)
            watcher.cancel()
            latencies = outcome[0]
            results[phase] = statistics.median(latencies)
            print(f"{phase:>14}: A's text turn p50 {statistics.median(latencies) * 1000:5.0f} ms, max"
                  f" {max(latencies) * 1000:5.0f} ms ({len(latencies)} turns); server RSS +{peak[0] - rss0:.0f} MB"
                  + (f"; B {outcome[1]}" if len(outcome) > 1 else ""))
            await asyncio.sleep(3)
        print(f"not reading / reading: {results['B not reading'] / results['B reading']:.2f}x"
              f" (alone → reading: {results['B reading'] / results['alone']:.2f}x)")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--every", type=float, default=4.0, help="B asks for a reply this often")
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.every))
