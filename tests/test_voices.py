"""Voices and aliases: the stock names clients bring speak with a local voice, the seed's
Inworld session body is accepted whole, GET /v1/voices lists them, metadata is echoed."""

from __future__ import annotations

import asyncio
import base64
import json

import aiohttp
import numpy as np
import pytest
import websockets

from cadence.config import load_config_text, validate
from cadence.errors import ConfigError
from cadence.server import create_app
from cadence.voice.catalog import INWORLD_VOICES, OPENAI_VOICES, VoiceCatalog, VoiceEntry
from servers import serving
from test_realtime import client, collect, of, stream_audio

RATE = 24000
SEED_BODY = {  # the seed's JavaScript example (Inworld path), as it sends it after session.created
    "type": "realtime", "instructions": "You are Nova, a warm companion. Answer in one short sentence.",
    "model": "deepseek/deepseek-v4-pro",
    "audio": {"input": {"transcription": {"model": "inworld/inworld-stt-1"},
                        "turn_detection": {"type": "server_vad", "endOfTurnConfidenceThreshold": 0.6,
                                           "interrupt_response": True}},
              "output": {"voice": "Sarah", "model": "inworld-tts-2", "speed": 1.0}},
    "providerData": {"memory": {"auto_summarize": True}, "backchannel": {"enabled": True},
                     "responsiveness": {"filler_phrase": "short"}},
}


def test_every_stock_name_resolves_and_a_voice_of_the_same_gender_is_preferred():
    catalog = VoiceCatalog("en_US-joe-medium", {"luna": VoiceEntry(voice="en_US-joe-medium", gender="female")})
    for name in [*OPENAI_VOICES, *INWORLD_VOICES]:
        voice = catalog.resolve(name.upper())  # names match without regard to case
        assert voice is not None and voice.entry.voice == "en_US-joe-medium", name
    assert catalog.resolve("Sarah").alias_of == "luna" and catalog.resolve("nova").alias_of == "luna"
    assert catalog.resolve("ash").alias_of == "en_US-joe-medium" and catalog.resolve("Clive").alias_of == "en_US-joe-medium"
    assert catalog.resolve("alloy").alias_of == "en_US-joe-medium"  # no neutral voice: the pipeline's own
    assert catalog.resolve("Bogus") is None
    listing = {v["id"]: v for v in catalog.listing()["data"]}
    assert listing["en_US-joe-medium"]["default"] and "ash" in listing["en_US-joe-medium"]["aliases"]
    assert "Sarah" in listing["luna"]["aliases"] and "Sarah" not in listing["en_US-joe-medium"]["aliases"]
    assert VoiceCatalog(None).resolve("ash") is None  # no tts stage: nothing to alias onto


def test_a_voices_entry_is_checked_with_its_line():
    text = ("voices:\n  luna:\n    voice: no-such-voice.onnx\npipeline:\n  - {type: tts}\n")
    with pytest.raises(ConfigError) as info:
        validate(load_config_text(text))
    assert ":3:" in str(info.value) and "voices.luna.voice" in str(info.value), info.value
    with pytest.raises(ConfigError) as info:
        validate(load_config_text("voices:\n  luna: {voice: en_US-joe-medium, speed: 9}\npipeline:\n  - {type: tts}\n"))
    assert "voices.luna.speed" in str(info.value)
    with pytest.raises(ConfigError) as info:
        validate(load_config_text("voices:\n  luna: {voice: en_US-joe-medium}\npipeline:\n  - {type: vad}\n"))
    assert "no tts stage" in str(info.value)


async def test_the_seed_session_body_is_accepted_whole_and_a_spoken_question_is_answered(nova_factory, speak):
    async with serving(create_app(nova_factory)) as base:
        url = base.replace("http://", "ws://") + "/api/v1/realtime/session?key=seed&protocol=realtime"
        async with websockets.connect(url, max_size=None) as ws:
            assert json.loads(await ws.recv())["type"] == "session.created"
            await ws.send(json.dumps({"type": "session.update", "session": SEED_BODY}))
            while (event := json.loads(await asyncio.wait_for(ws.recv(), 10)))["type"] != "session.updated":
                assert event["type"] != "error", event
            session = event["session"]
            assert session["instructions"] == SEED_BODY["instructions"]
            assert session["audio"]["input"]["turn_detection"]["endOfTurnConfidenceThreshold"] == 0.6
            assert session["audio"]["output"]["voice"] == "Sarah"
            voice = session["providerData"]["voice"]
            assert voice["voice"] == "en_US-joe-medium" and voice["alias_of"] == "en_US-joe-medium"
            # Names of models it does not serve are reported as what runs, not as asked.
            assert session["model"] == "local/qwen2.5-coder-0.5b-instruct"
            assert session["audio"]["input"]["transcription"]["model"] == "whisper-tiny.en"
            assert session["audio"]["output"]["model"] == "piper"
            assert session["providerData"]["unsupported"] == []
            pcm = np.concatenate([speak("What is the capital of France?", rate=RATE), np.zeros(RATE * 3, np.int16)])
            for i in range(0, len(pcm), RATE // 50):
                await ws.send(json.dumps({"type": "input_audio_buffer.append",
                                          "audio": base64.b64encode(pcm[i:i + RATE // 50].tobytes()).decode()}))
                await asyncio.sleep(0.02)
            audio = 0
            while (event := json.loads(await asyncio.wait_for(ws.recv(), 60)))["type"] != "response.done":
                assert event["type"] != "error", event
                if event["type"] == "response.output_audio.delta":
                    audio += len(base64.b64decode(event["delta"]))
            assert event["response"]["status"] == "completed" and audio > RATE  # > 0.5 s of reply audio


async def test_the_openai_sdk_with_voice_ash_and_metadata(nova_factory):
    async with serving(create_app(nova_factory)) as base:
        async with client(base.replace("http://", "ws://")).realtime.connect(model="gpt-realtime") as conn:
            await collect(conn, until="session.created")
            await conn.session.update(session={"type": "realtime", "audio": {"output": {"voice": "ash"}}})
            updated = (await collect(conn, until="session.updated"))[-1].session
            assert updated.audio.output.voice == "ash"
            assert updated.model_extra["providerData"]["voice"]["voice"] == "en_US-joe-medium"
            await conn.conversation.item.create(item={"type": "message", "role": "user",
                                                      "content": [{"type": "input_text", "text": "Say hi."}]})
            await conn.response.create(response={"metadata": {"lk.generation_id": "gen-1"}})
            events = await collect(conn)
        assert of(events, "response.created")[0].response.metadata == {"lk.generation_id": "gen-1"}
        done = of(events, "response.done")[0].response
        assert done.metadata == {"lk.generation_id": "gen-1"} and done.status == "completed"
        assert of(events, "response.output_audio.delta")  # spoken, with the voice ash maps onto


async def test_an_unknown_voice_refuses_the_whole_update_and_a_catalog_voice_sets_its_prosody(nova_factory,
                                                                                             monkeypatch):
    monkeypatch.setitem(nova_factory.config.config.voices, "luna",
                        VoiceEntry(voice="en_US-joe-medium", gender="female", speed=1.25))
    app = create_app(nova_factory)
    async with serving(app) as base:
        async with aiohttp.ClientSession() as http, http.get(f"{base}/v1/voices") as response:
            listing = (await response.json())["data"]
        assert [v["id"] for v in listing] == ["en_US-joe-medium", "luna"] and "Sarah" in listing[1]["aliases"]
        async with websockets.connect(base.replace("http://", "ws://") + "/v1/realtime") as ws:
            await ws.recv()
            await ws.recv()
            await ws.send(json.dumps({"type": "session.update", "session": {
                "instructions": "You are Kit.", "audio": {"output": {"voice": "Bogus"}}}}))
            error = json.loads(await ws.recv())
            assert error["type"] == "error" and error["error"]["param"] == "session.audio.output.voice"
            assert "en_US-joe-medium, luna" in error["error"]["message"] and "GET /v1/voices" in error["error"]["message"]
            await ws.send(json.dumps({"type": "session.update", "session": {"audio": {"output": {"voice": "Sarah",
                                                                                               "speed": 1.1}}}}))
            updated = json.loads(await ws.recv())
            assert updated["type"] == "session.updated", updated
            assert updated["session"]["instructions"] != "You are Kit."  # the refused update applied nothing
            assert updated["session"]["providerData"]["voice"]["alias_of"] == "luna"
            session = next(iter(app.state.realtime_sessions))
            for _ in range(50):  # settings reach the TTS through the pipeline
                if abs(session.pipeline.roles.tts.speed - 1.25 * 1.1) < 1e-6:
                    break
                await asyncio.sleep(0.05)
            assert session.pipeline.roles.tts.speed == pytest.approx(1.25 * 1.1)


async def test_bad_metadata_is_an_error_naming_it_and_the_session_goes_on(nova_factory):
    async with serving(create_app(nova_factory)) as base:
        async with websockets.connect(base.replace("http://", "ws://") + "/v1/realtime") as ws:
            await ws.recv()
            await ws.recv()
            for metadata, param in (({f"k{i}": "v" for i in range(17)}, "response.metadata"),
                                    ({"turn": 3}, "response.metadata.turn")):
                await ws.send(json.dumps({"type": "response.create", "response": {"metadata": metadata}}))
                error = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert error["type"] == "error" and error["error"]["param"] == param, error
            await ws.send(json.dumps({"type": "conversation.item.create", "item": {
                "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi."}]}}))
            await ws.send(json.dumps({"type": "response.create", "response": {
                "output_modalities": ["text"], "metadata": {"ok": "yes"}}}))
            while (event := json.loads(await asyncio.wait_for(ws.recv(), 60)))["type"] != "response.done":
                assert event["type"] != "error", event
            assert event["response"]["status"] == "completed" and event["response"]["metadata"] == {"ok": "yes"}
