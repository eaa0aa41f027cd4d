"""Connect/disconnect cycles of every kind, and the server-side numbers that must stay flat
over them (shared by tests/test_churn.py and benchmarks/churn.py)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import urllib.request
from pathlib import Path

import websockets


def proc_stats(pid: int) -> tuple[float, float]:
    """(CPU seconds, RSS MB) of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return cpu, int(fields[21]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def stats(pid: int, address: str) -> dict:
    _, rss = proc_stats(pid)
    health = json.load(urllib.request.urlopen(f"http://{address}/healthz", timeout=10))
    return {"rss_mb": round(rss, 1), "fds": len(os.listdir(f"/proc/{pid}/fd")),
            "threads": int(next(line.split()[1] for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                                if line.startswith("Threads:"))),
            "tasks": health["asyncio_tasks"], "sessions": health["sessions"]}


async def cycle(url: str, kind: int) -> bool:
    """One connection of ``kind``: 0 a clean close, 1 a close before session.created, 2 a
    dropped TCP connection, 3 a hang-up mid-reply. True if it went as planned."""
    try:
        ws = await websockets.connect(url, max_size=None, open_timeout=30)
    except Exception as exc:
        print(f"connect failed: {exc!r}", file=sys.stderr)
        return False
    try:
        if kind == 1:  # gone before session.created
            await ws.close()
            return True
        while json.loads(await asyncio.wait_for(ws.recv(), 30))["type"] != "session.created":
            pass
        if kind == 3:  # hang up mid-reply
            await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime",
                                                                          "output_modalities": ["text"]}}))
            await ws.send(json.dumps({"type": "conversation.item.create", "item": {"type": "message", "role": "user",
                                      "content": [{"type": "input_text", "text": "Tell me a story."}]}}))
            await ws.send(json.dumps({"type": "response.create"}))
            while json.loads(await asyncio.wait_for(ws.recv(), 30))["type"] != "response.created":
                pass
        if kind == 2:  # the TCP connection drops: no close frame
            ws.transport.abort()
            return True
        await ws.close()
        return True
    except Exception as exc:
        print(f"cycle {kind} failed: {exc!r}", file=sys.stderr)
        ws.transport.abort()
        return False


