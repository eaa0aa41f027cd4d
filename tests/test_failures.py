"""A reply that cannot be made fails loudly (response.done failed + an error event), and the
session answers the next turn. The LLM is the loopback test double of a backend."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

import fake_backend
from cadence.config import load_config_text, validate
from cadence.pipelines.builder import PipelineFactory
from cadence.server import create_app
from servers import serving


@pytest.fixture(scope="module")
async def fake_url():
    async with serving(fake_backend.app) as url:
        yield url


async def text_turn(ws, text: str) -> tuple[list[dict], dict]:
    await ws.send(json.dumps({"type": "conversation.item.create", "item": {
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}}))
    await ws.send(json.dumps({"type": "response.create"}))
    events = []
    while True:
        event = json.loads(await asyncio.wait_for(ws.recv(), 30))
        events.append(event)
        if event["type"] == "response.done":
            return events, event["response"]


async def test_a_failing_backend_fails_the_response_and_the_next_turn_is_answered(store, fake_url):
    config = {"router": {"providers": {"fake": {"kind": "openai", "base_url": f"{fake_url}/flaky/v1"}}},
              "pipeline": [{"type": "context"}, {"type": "llm", "model": "fake/m"}]}
    factory = PipelineFactory(validate(load_config_text(json.dumps(config))), store)
    fake_backend.failing.add("flaky")
    try:
        async with serving(create_app(factory)) as base:
            async with websockets.connect(base.replace("http://", "ws://") + "/v1/realtime") as ws:
                assert json.loads(await ws.recv())["session"]["output_modalities"] == ["text"]  # no tts stage
                events, failed = await text_turn(ws, "Hello?")
                assert failed["status"] == "failed", failed
                assert failed["status_details"]["error"]["code"] == "llm_failed"
                assert "500" in failed["status_details"]["error"]["message"]
                errors = [e["error"] for e in events if e["type"] == "error"]
                assert errors and errors[0]["code"] == "llm_failed" and errors[0]["type"] == "server_error"

                fake_backend.failing.discard("flaky")  # the backend recovers
                _, answered = await text_turn(ws, "Hello again?")
                assert answered["status"] == "completed"
                assert answered["output"][0]["content"][0]["text"] == "replica flaky says hi."
    finally:
        fake_backend.failing.discard("flaky")


async def test_instructions_too_long_are_refused_and_an_oversized_turn_fails_loudly(nova_factory):
    async with serving(create_app(nova_factory)) as base:
        async with websockets.connect(base.replace("http://", "ws://") + "/v1/realtime") as ws:
            assert json.loads(await ws.recv())["type"] == "session.created"
            assert json.loads(await ws.recv())["type"] == "conversation.created"
            huge = "You are Nova. " + "Remember this long backstory sentence about the sea. " * 900
            await ws.send(json.dumps({"type": "session.update", "event_id": "u1",
                                      "session": {"type": "realtime", "instructions": huge}}))
            error = json.loads(await asyncio.wait_for(ws.recv(), 30))
            assert error["type"] == "error" and error["error"]["code"] == "instructions_too_long"
            assert error["error"]["param"] == "session.instructions" and error["error"]["event_id"] == "u1"
            assert "2048-token window" in error["error"]["message"]
            await ws.send(json.dumps({"type": "session.update", "session": {"max_output_tokens": 1900}}))
            error = json.loads(await asyncio.wait_for(ws.recv(), 30))["error"]
            assert (error["code"], error["param"]) == ("max_output_tokens_too_large", "session.max_output_tokens")
            await ws.send(json.dumps({"type": "response.create", "response": {"max_output_tokens": 1900}}))
            error = json.loads(await asyncio.wait_for(ws.recv(), 30))["error"]
            assert (error["code"], error["param"]) == ("max_output_tokens_too_large", "response.max_output_tokens")
            card = {"spec": "chara_card_v2", "data": {"name": "Verbose", "description": "Lots of lore. " * 900}}
            await ws.send(json.dumps({"type": "session.update", "session": {"providerData": {"character": card}}}))
            error = json.loads(await asyncio.wait_for(ws.recv(), 30))["error"]
            assert (error["code"], error["param"]) == ("instructions_too_long", "session.providerData.character")

            await ws.send(json.dumps({"type": "session.update", "session": {"output_modalities": ["text"]}}))
            updated = json.loads(await asyncio.wait_for(ws.recv(), 30))
            assert updated["type"] == "session.updated"
            assert updated["session"]["instructions"].startswith("You are Nova, a curious")  # unchanged

            events, failed = await text_turn(ws, "Please read this. " + "All work and no play. " * 1500)
            assert failed["status"] == "failed" and failed["status_details"]["error"]["code"] == "llm_failed"
            assert any(e["type"] == "error" and e["error"]["code"] == "llm_failed" for e in events)
            await ws.send(json.dumps({"type": "conversation.item.delete",
                                      "item_id": [e for e in events if e["type"] == "conversation.item.added"][0]
                                      ["item"]["id"]}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 30))["type"] == "conversation.item.deleted"
            _, answered = await text_turn(ws, "Hi Nova!")
            assert answered["status"] == "completed" and answered["output"][0]["content"][0]["text"].strip()


async def test_a_request_that_fails_before_its_reply_begins_still_gets_a_failed_response(store, fake_url, monkeypatch):
    from cadence.processors.context_window import ContextWindow

    config = {"router": {"providers": {"fake": {"kind": "openai", "base_url": f"{fake_url}/ok/v1"}}},
              "pipeline": [{"type": "context"}, {"type": "llm", "model": "fake/m"}]}
    factory = PipelineFactory(validate(load_config_text(json.dumps(config))), store)
    real_prepare, broken = ContextWindow.prepare, {"on": True}

    async def prepare(self, context):  # the user's memory cannot be read, once
        if broken.pop("on", False):
            raise ConnectionError("the memory store is unreachable")
        return await real_prepare(self, context)

    monkeypatch.setattr(ContextWindow, "prepare", prepare)
    async with serving(create_app(factory)) as base:
        async with websockets.connect(base.replace("http://", "ws://") + "/v1/realtime") as ws:
            await ws.recv()  # session.created
            events, failed = await text_turn(ws, "Hello?")
            assert [e["type"] for e in events if e["type"].startswith("response.")] == ["response.created",
                                                                                         "response.done"]
            assert failed["status"] == "failed" and failed["status_details"]["error"]["code"] == "llm_failed"
            assert "unreachable" in failed["status_details"]["error"]["message"]
            _, answered = await text_turn(ws, "Hello again?")
            assert answered["status"] == "completed" and answered["output"], answered
