"""Fillers (the filler stage, providerData.responsiveness): a reply whose first words are
late is preceded by a short phrase, spoken by the real Piper voice; a prompt reply is not.
The LLM is the loopback test double of a backend (``/slow2``: first token after 2 s)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import websockets

import fake_backend
from cadence.config import load_config_text, validate
from cadence.pipelines.builder import PipelineFactory
from cadence.server import create_app
from servers import serving

FILLER = "Hmm, one moment."
RESPONSIVENESS = {"enabled": True, "enable_filler_on_first_assistant_reply": True, "pause_text": FILLER,
                  "small_model": "some/small-model"}


@pytest.fixture(scope="module")
async def fake_url():
    async with serving(fake_backend.app) as url:
        yield url


def factory(store, url: str, mode: str) -> PipelineFactory:
    config = {"router": {"providers": {"fake": {"kind": "openai", "base_url": f"{url}/{mode}/v1"}}},
              "pipeline": [{"type": "context"}, {"type": "llm", "model": "fake/m"}, {"type": "filler"},
                           {"type": "tts"}]}
    return PipelineFactory(validate(load_config_text(json.dumps(config))), store)


async def reply(ws) -> dict:
    """Ask for a reply to a typed turn; when its audio and transcript pieces came, and the response."""
    await ws.send(json.dumps({"type": "conversation.item.create", "item": {
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Tell me a story."}]}}))
    sent = time.monotonic()
    await ws.send(json.dumps({"type": "response.create"}))
    audio, transcript = [], []
    while True:
        event = json.loads(await asyncio.wait_for(ws.recv(), 30))
        now = time.monotonic() - sent
        if event["type"] == "response.output_audio.delta":
            audio.append(now)
        elif event["type"] == "response.output_audio_transcript.delta":
            transcript.append((now, event["delta"]))
        elif event["type"] == "error":
            raise AssertionError(event)
        elif event["type"] == "response.done":
            return {"audio": audio, "transcript": transcript, "response": event["response"]}


async def connect(base: str):
    ws = await websockets.connect(base.replace("http://", "ws://") + "/v1/realtime", max_size=None)
    for _ in range(2):
        json.loads(await ws.recv())  # session.created, conversation.created
    await ws.send(json.dumps({"type": "session.update",
                              "session": {"type": "realtime", "providerData": {"responsiveness": RESPONSIVENESS}}}))
    updated = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert updated["type"] == "session.updated", updated
    assert "responsiveness.small_model" in updated["session"]["providerData"]["unsupported"]  # reported, not used
    return ws


async def one_reply(store, url: str, mode: str) -> dict:
    async with serving(create_app(factory(store, url, mode))) as base:
        ws = await connect(base)
        try:
            return await reply(ws)
        finally:
            await ws.close()


async def test_a_late_reply_starts_with_the_filler_and_then_follows_it(store, fake_url):
    got = await one_reply(store, fake_url, "slow2")
    assert got["response"]["status"] == "completed", got["response"]
    words = "".join(text for _, text in got["transcript"])
    assert words.startswith(FILLER) and "Once upon a time" in words, words  # one assistant turn, filler first
    first_audio = got["audio"][0]
    assert 1.2 <= first_audio <= 1.2 + 0.15, f"the filler's audio began {first_audio:.3f} s after response.create"
    reply_text_at = next(t for t, text in got["transcript"] if "Once" in text)
    assert reply_text_at >= 2.0  # the reply's own words came from the slow backend, after the filler
    transcript = got["response"]["output"][0]["content"][0]["transcript"]
    assert transcript.startswith(FILLER) and transcript.index("Once") > len(FILLER)  # no overlap: one after the other


async def test_a_prompt_reply_gets_no_filler(store, fake_url):
    got = await one_reply(store, fake_url, "ok")
    words = "".join(text for _, text in got["transcript"])
    assert "Once upon a time" in words and FILLER not in words, words


async def test_bad_responsiveness_fields_are_named(store, fake_url):
    async with serving(create_app(factory(store, fake_url, "ok"))) as base:
        async with websockets.connect(base.replace("http://", "ws://") + "/v1/realtime") as ws:
            for _ in range(2):
                await ws.recv()
            for field, value in (("initial_wait_timeout_ms", "soon"), ("filler_phrase", "medium"), ("colour", 1)):
                await ws.send(json.dumps({"type": "session.update", "session": {
                    "providerData": {"responsiveness": {field: value}}}}))
                error = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert error["type"] == "error", error
                assert error["error"]["param"] == f"session.providerData.responsiveness.{field}", error


async def test_a_failing_backend_fails_the_response_loudly_and_speaks_no_filler(store, fake_url):
    async with serving(create_app(factory(store, fake_url, "e500"))) as base:
        ws = await connect(base)
        try:
            await ws.send(json.dumps({"type": "conversation.item.create", "item": {
                "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello?"}]}}))
            await ws.send(json.dumps({"type": "response.create"}))
            events = []
            while not events or events[-1]["type"] != "response.done":
                events.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
            await asyncio.sleep(1.5)  # past the filler's wait: nothing may be spoken for a failed reply
            await ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
            later = json.loads(await asyncio.wait_for(ws.recv(), 10))
        finally:
            await ws.close()
    assert events[-1]["response"]["status"] == "failed"
    assert any(e["type"] == "error" and e["error"]["code"] == "llm_failed" for e in events), events
    assert not any(e["type"] == "response.output_audio.delta" for e in events)
    assert later["type"] == "input_audio_buffer.cleared"  # no filler audio came meanwhile; the session goes on
