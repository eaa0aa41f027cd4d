"""SIGTERM drains: no new session is admitted, the reply in flight finishes, then the
session is closed with 1012 (service restart: reconnect) and the process exits in time."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time

import websockets

from conftest import NOVA, start_server

DRAIN_S = 30


async def test_sigterm_lets_the_reply_finish_then_closes_with_1012_and_exits(tmp_path):
    config = tmp_path / "nova.yaml"
    config.write_text(NOVA.read_text().replace("  port: 8000\n", f"  port: 8000\n  drain_s: {DRAIN_S}\n"))
    proc, url = start_server(config, env={**os.environ, "CADENCE_DATA_DIR": str(tmp_path)})
    ws_url = url.replace("http://", "ws://") + "/v1/realtime"
    try:
        async with websockets.connect(ws_url, max_size=None) as ws:
            assert json.loads(await ws.recv())["type"] == "session.created"
            await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime",
                                                                          "output_modalities": ["text"]}}))
            await ws.send(json.dumps({"type": "conversation.item.create", "item": {
                "type": "message", "role": "user",
                "content": [{"type": "input_text", "text": "Tell me a long story about the sea."}]}}))
            await ws.send(json.dumps({"type": "response.create", "response": {"max_output_tokens": 120}}))
            while json.loads(await ws.recv())["type"] != "response.created":
                pass
            proc.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            for _ in range(40):  # new sessions are refused at once, with a status a client can act on
                try:
                    extra = await websockets.connect(ws_url)
                except websockets.exceptions.InvalidStatus as refusal:
                    assert refusal.response.status_code == 503
                    assert "shutting down" in json.loads(refusal.response.body)["error"]["message"]
                    break
                await extra.close()
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("a new session was still admitted 2 s after SIGTERM")
            events = []
            try:
                async for message in ws:
                    events.append(json.loads(message))
            except websockets.exceptions.ConnectionClosed:
                pass
            assert ws.close_code == 1012, ws.close_code  # service restart: reconnect
        done = [e for e in events if e["type"] == "response.done"]
        assert done and done[0]["response"]["status"] == "completed", [e["type"] for e in events][-5:]
        assert proc.wait(timeout=DRAIN_S + 15) is not None
        assert time.monotonic() - signalled < DRAIN_S + 10
        assert "draining: 1 sessions, 1 replying" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
