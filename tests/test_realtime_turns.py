"""Turn resumption over the Realtime WebSocket (real models): two sentences with a short pause
are one user item and one response, and the client sees the item before the reply to it."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import aiohttp
import numpy as np
import websockets

from cadence.server import create_app
from conftest import word_error_rate
from servers import serving

RATE = 24000


async def test_two_sentences_are_one_item_and_one_response(nova_factory, speak):
    audio = np.concatenate([speak("Good evening Nova.", rate=RATE), np.zeros(int(RATE * 0.35), np.int16),
                            speak("What did you do today?", rate=RATE), np.zeros(RATE * 4, np.int16)])
    events: list[dict] = []
    async with serving(create_app(nova_factory)) as base:
        async with websockets.connect(base.replace("http://", "ws://") + "/v1/realtime", max_size=None) as ws:
            await ws.send(json.dumps({"type": "session.update", "session": {
                "type": "realtime", "providerData": {"turn_latency": True}, "audio": {
                    "input": {"format": {"type": "audio/pcm", "rate": RATE}, "turn_detection": {"type": "server_vad"}}}}}))

            async def receive():
                async for message in ws:
                    event = json.loads(message)
                    events.append(event)

            receiver = asyncio.create_task(receive())
            t0, chunk = time.monotonic(), RATE // 50
            for sent, start in enumerate(range(0, len(audio), chunk), start=1):
                await ws.send(json.dumps({"type": "input_audio_buffer.append",
                                          "audio": base64.b64encode(audio[start:start + chunk].tobytes()).decode()}))
                await asyncio.sleep(max(0.0, t0 + sent * 0.02 - time.monotonic()))
            for _ in range(150):  # until a reply is done, then 1.5 s more: nothing else may come
                if any(e["type"] == "response.done" for e in events):
                    break
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.5)
            receiver.cancel()
        async with aiohttp.ClientSession() as http, http.get(base + "/metrics") as response:
            metrics = await response.text()

    types = [e["type"] for e in events]
    transcripts = [e for e in events if e["type"] == "conversation.item.input_audio_transcription.completed"]
    assert len(transcripts) == 1, transcripts
    assert word_error_rate("Good evening Nova. What did you do today?", transcripts[0]["transcript"]) <= 0.3
    assert types.count("response.created") == 1 and types.count("input_audio_buffer.committed") == 1, types
    user_item = transcripts[0]["item_id"]
    assert types.index("input_audio_buffer.committed") < types.index("response.created")
    created = [e for e in events if e["type"] == "response.created"][0]["response"]["id"]
    deltas = {e["response_id"] for e in events if e["type"] == "response.output_audio.delta"}
    assert deltas == {created}  # no audio of a reply the client never saw begin
    added = [e for e in events if e["type"] == "conversation.item.added"]
    assert [e["item"]["role"] for e in added] == ["user", "assistant"]
    assert added[1]["previous_item_id"] == user_item  # the reply comes after what it answers
    done = [e for e in events if e["type"] == "response.done"][0]["response"]
    assert done["status"] == "completed" and done["output"][0]["content"][0]["transcript"]
    latency = [e for e in events if e["type"] == "cadence.turn.latency"]
    assert len(latency) == 1 and latency[0]["latency_ms"]["voice_to_voice"] > 0, types
    assert 'cadence_turn_latency_seconds_count{stage="voice_to_voice"}' in metrics
