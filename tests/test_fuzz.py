"""Hostile input: a generated corpus of malformed events (deterministic seed) against one
session. The server never dies, the session is never closed or silenced, every event is
answered (an ``error`` naming it and the field at fault, or its normal success), and a
normal turn works after."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from cadence.server import create_app
from cadence.transports.realtime import rate
from fuzz_events import corpus, param_matches
from servers import serving

EVENTS = 600  # per turn-detection mode  # benchmarks/fuzz_realtime.py runs the 10,000 of the issue
SUCCESSES = {"session.updated", "conversation.item.added", "conversation.item.deleted", "conversation.item.retrieved",
             "conversation.item.truncated", "response.created", "input_audio_buffer.committed",
             "output_audio_buffer.cleared"}


@pytest.mark.parametrize("turn_detection", [None, {"type": "server_vad"}], ids=["manual", "server_vad"])
async def test_a_fuzz_corpus_is_answered_event_by_event_and_the_session_survives(nova_factory, monkeypatch,
                                                                                  turn_detection):
    monkeypatch.setattr(rate, "EVENTS_PER_SEC", 10_000)  # the corpus is sent as fast as it is answered
    async with serving(create_app(nova_factory)) as base:
        async with websockets.connect(base.replace("http://", "ws://") + "/v1/realtime", max_size=None) as ws:
            assert json.loads(await ws.recv())["type"] == "session.created"
            await ws.send(json.dumps({"type": "session.update", "session": {
                "type": "realtime", "output_modalities": ["text"], "audio": {"input": {"turn_detection": turn_detection}}}}))
            while json.loads(await ws.recv())["type"] != "session.updated":
                pass
            unanswered, wrong, misnamed = [], [], []
            for raw, event_id, param in corpus(EVENTS, seed=7 if turn_detection is None else 8):
                await ws.send(raw)
                if '"audio": ""' in raw and "input_audio_buffer.append" in raw:
                    continue  # an empty append is valid, and a valid append is answered by nothing
                while True:
                    try:
                        event = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    except TimeoutError:
                        unanswered.append(raw[:120])
                        break
                    if event["type"] == "error":
                        error = event["error"]
                        if event_id is not None and error.get("event_id") != event_id:
                            wrong.append((raw[:120], error))
                        if not param_matches(param, error.get("param")):
                            misnamed.append((raw[:100], param, error.get("param")))
                        break
                    if event["type"] in SUCCESSES:
                        if event["type"] == "response.created":  # a valid response.create: let it finish
                            while json.loads(await ws.recv())["type"] != "response.done":
                                pass
                        break
            assert not unanswered, unanswered[:10]
            assert not wrong, [(raw[:60], error.get('code'), error.get('event_id')) for raw, error in wrong[:20]]
            assert not misnamed, misnamed[:10]  # each error names the field the hostile value was in
            # The session still works: a normal text turn.
            await ws.send(json.dumps({"type": "conversation.item.create", "item": {
                "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello!"}]}}))
            await ws.send(json.dumps({"type": "response.create"}))
            while (event := json.loads(await asyncio.wait_for(ws.recv(), 60)))["type"] != "response.done":
                pass
            assert event["response"]["status"] == "completed", event
