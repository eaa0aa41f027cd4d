"""One spoken reply over a raw Realtime WebSocket: what a test of the audio path reads back."""

from __future__ import annotations

import asyncio
import base64
import json


async def spoken_reply(ws, text: str = "Hi.") -> tuple[bytearray, str, dict]:
    """Send a user message and ``response.create``; the reply's PCM, its audio transcript and
    its ``response.done`` response (an ``error`` event fails the test)."""
    await ws.send(json.dumps({"type": "conversation.item.create", "item": {
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}}))
    await ws.send(json.dumps({"type": "response.create"}))
    audio, transcript = bytearray(), []
    while True:
        event = json.loads(await asyncio.wait_for(ws.recv(), 60))
        if event["type"] == "response.output_audio.delta":
            audio += base64.b64decode(event["delta"])
        elif event["type"] == "response.output_audio_transcript.delta":
            transcript.append(event["delta"])
        elif event["type"] == "error":
            raise AssertionError(event)
        elif event["type"] == "response.done":
            return audio, "".join(transcript), event["response"]


def open_session(base: str):
    """A raw WebSocket to ``base``'s /v1/realtime (use ``async with``; then ``first_events``)."""
    import websockets

    return websockets.connect(base.replace("http://", "ws://") + "/v1/realtime", max_size=None)


async def update_session(ws, session: dict, *, fresh: bool = True) -> dict:
    """(After the session's first two events, when ``fresh``) send ``session.update``; the answer."""
    if fresh:
        for _ in range(2):  # session.created, conversation.created
            await ws.recv()
    await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime", **session}}))
    return json.loads(await asyncio.wait_for(ws.recv(), 10))
