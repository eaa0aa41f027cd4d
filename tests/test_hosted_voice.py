"""A voice of an OpenAI-compatible speech API, one YAML entry away (engine: openai).

The "provider" is a second Cadence serving /v1/audio/speech with its Piper voice, so the
whole path is real and offline: the catalog entry, the openai SDK call per sentence, the
24 kHz PCM, delivery sent as instructions, in REST and in a realtime session.
"""

from __future__ import annotations

import base64
import io
import json
import wave

import aiohttp
import numpy as np
import pytest

from cadence.config import load_config_text, validate
from cadence.pipelines.builder import PipelineFactory
from cadence.server import create_app
from conftest import words
from servers import serving
from ws_reply import open_session, spoken_reply, update_session

TEXT = "The harbour lamps are lit. Come and walk with me along the wall tonight."


def _rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float64)
    loud = samples[np.abs(samples) > 300]
    return float(np.sqrt(np.mean(loud ** 2))) if len(loud) else 0.0


def _config(provider: str, stages: list | None = None, **sections: object) -> dict:
    return {"voices": {"remote": {"engine": "openai", "voice": "alloy", "base_url": f"{provider}/v1",
                                  "api_key": "k", "model": "tts-1", "speed": 1.0, "language": "en",
                                  "description": "joe, over HTTP"}},
            **sections, "pipeline": stages or [{"type": "tts"}]}


CALLS: list[str] = []  # the paths the provider was asked for


@pytest.fixture(scope="module")
async def provider(store):
    factory = PipelineFactory(validate(load_config_text("pipeline:\n  - type: tts\n")), store)
    app = create_app(factory)

    async def counting(scope, receive, send):
        if scope["type"] == "http":
            CALLS.append(scope["path"])
        await app(scope, receive, send)

    async with serving(counting) as url:
        yield url


async def test_a_hosted_voice_speaks_over_rest_and_takes_its_delivery_as_instructions(provider, store, transcribe):
    factory = PipelineFactory(validate(load_config_text(json.dumps(_config(provider)))), store)
    async with serving(create_app(factory)) as base, aiohttp.ClientSession() as http:
        async with http.get(f"{base}/tts/v1/voices") as reply:
            listed = {v["voiceId"]: v for v in (await reply.json())["voices"]}
        assert "openai" in listed["remote"]["tags"] and listed["remote"]["languages"] == ["en"]
        rms = {}
        for label, text in (("plain", TEXT), ("whisper", "[whispering] " + TEXT)):
            body = {"text": text, "voiceId": "remote", "audioConfig": {"audioEncoding": "LINEAR16"}}
            async with http.post(f"{base}/tts/v1/voice", json=body) as reply:
                assert reply.status == 200, await reply.text()
                clip = base64.b64decode((await reply.json())["audioContent"])
            with wave.open(io.BytesIO(clip)) as wav:
                assert wav.getframerate() == 24000  # the provider's rate, unresampled
                pcm = wav.readframes(wav.getnframes())
            rms[label] = _rms(pcm)
            heard = set(words(transcribe(np.frombuffer(pcm, dtype=np.int16), 24000)))
            assert heard & {"harbour", "harbor", "lamps", "walk", "wall", "tonight"}, heard
            assert "whispering" not in heard
        # The tag reached the provider as instructions ("whispering"), which it performed.
        assert rms["whisper"] < 0.6 * rms["plain"], rms
        body = {"text": TEXT, "voiceId": "remote", "temperature": 1.3}
        async with http.post(f"{base}/tts/v1/voice", json=body) as reply:
            assert reply.status == 400 and (await reply.json())["details"] == [{"field": "temperature"}]


async def test_a_provider_that_fails_is_a_loud_500_not_an_empty_clip(store):
    config = _config("http://127.0.0.1:9")  # nothing listens on the discard port
    factory = PipelineFactory(validate(load_config_text(json.dumps(config))), store)
    async with serving(create_app(factory)) as base, aiohttp.ClientSession() as http:
        async with http.post(f"{base}/v1/audio/speech", json={"model": "tts-1", "voice": "remote",
                                                              "input": "Hello."}) as reply:
            assert reply.status == 500, await reply.read()
            assert "synthesis failed" in (await reply.json())["error"]["message"]
        for route in ("/tts/v1/voice", "/tts/v1/voice:stream"):  # streamed too: it fails before any audio
            async with http.post(f"{base}{route}", json={"text": "Hello.", "voiceId": "remote"}) as reply:
                assert reply.status == 500 and "synthesis failed" in (await reply.json())["message"], route
        sse = {"model": "tts-1", "voice": "remote", "input": "Hello.", "stream_format": "sse"}
        async with http.post(f"{base}/v1/audio/speech", json=sse) as reply:
            assert reply.status == 500, await reply.read()


def test_piper_settings_on_a_hosted_voice_are_a_config_error():
    config = _config("http://127.0.0.1:1")
    config["voices"]["remote"]["noise_scale"] = 0.5
    with pytest.raises(Exception, match="noise_scale"):
        validate(load_config_text(json.dumps(config)))


async def test_a_session_speaks_with_the_hosted_voice(provider, store, transcribe):
    import fake_backend

    async with serving(fake_backend.app) as llm:
        config = _config(provider, router={"providers": {"fake": {"kind": "openai", "base_url": f"{llm}/ok/v1"}}},
                         stages=[{"type": "context"}, {"type": "llm", "model": "fake/m"}, {"type": "tts"}])
        factory = PipelineFactory(validate(load_config_text(json.dumps(config))), store)
        async with serving(create_app(factory)) as base:
            async with open_session(base) as ws:
                updated = await update_session(ws, {"audio": {"output": {"voice": "remote"}}})
                assert updated["type"] == "session.updated", updated
                assert updated["session"]["audio"]["output"]["voice"] == "remote"
                before = CALLS.count("/v1/audio/speech")
                audio, transcript, done = await spoken_reply(ws)
                assert done["status"] == "completed", done
                assert CALLS.count("/v1/audio/speech") > before  # spoken by the provider, not the local Piper
    assert len(audio) / 2 / 24000 > 0.5
    heard = set(words(transcribe(np.frombuffer(bytes(audio), dtype=np.int16), 24000)))
    assert heard & set(words(transcript)), (heard, transcript)



async def test_a_session_whose_hosted_voice_is_down_fails_the_reply_loudly_and_goes_on(store):
    """The provider refuses connections: the reply is response.done failed with an error
    event (tts_failed), and the session goes on (a local voice speaks the next reply)."""
    import asyncio

    import fake_backend
    from ws_reply import open_session, update_session

    async with serving(fake_backend.app) as llm:
        config = _config("http://127.0.0.1:9", router={"providers": {"fake": {"kind": "openai",
                                                                              "base_url": f"{llm}/ok/v1"}}},
                         stages=[{"type": "context"}, {"type": "llm", "model": "fake/m"}, {"type": "tts"}])
        factory = PipelineFactory(validate(load_config_text(json.dumps(config))), store)
        async with serving(create_app(factory)) as base, open_session(base) as ws:
            assert (await update_session(ws, {"audio": {"output": {"voice": "remote"}}}))["type"] == "session.updated"
            await ws.send(json.dumps({"type": "conversation.item.create", "item": {
                "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi."}]}}))
            await ws.send(json.dumps({"type": "response.create"}))
            errors = []
            while (event := json.loads(await asyncio.wait_for(ws.recv(), 60)))["type"] != "response.done":
                if event["type"] == "error":
                    errors.append(event["error"])
            assert event["response"]["status"] == "failed", event["response"]
            assert errors and errors[0]["code"] == "tts_failed", errors
            await ws.send(json.dumps({"type": "session.update", "session": {
                "type": "realtime", "audio": {"output": {"voice": "en_US-joe-medium"}}}}))
            seen = []
            while (event := json.loads(await asyncio.wait_for(ws.recv(), 30)))["type"] != "session.updated":
                seen.append(event)  # the failed reply's other sentences may still report before it
            assert all(e["type"] == "error" and e["error"]["code"] == "tts_failed" for e in seen), seen
            audio, _, done = await spoken_reply(ws)
            assert done["status"] == "completed" and len(audio) > 24000
