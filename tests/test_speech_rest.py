"""Speech REST: the openai SDK's speech call and Inworld's shape against the real Piper voice;
every encoding decodes with a standard decoder; a one-line second voice is selectable."""

from __future__ import annotations

import base64
import io
import json
import time

import aiohttp
import av
import numpy as np
import openai
import pytest

from cadence.config import load_config_text, validate
from cadence.pipelines.builder import PipelineFactory
from cadence.server import create_app
from conftest import words
from servers import serving

CONFIG = """
pipeline:
  - type: tts
voices:
  calm: {voice: en_US-joe-medium, speed: 0.75, description: slower joe}
"""
TEXT = "Hello there, my friend. The evening is quiet and the lamps are lit along the harbour wall."


@pytest.fixture(scope="module")
async def base(store):
    factory = PipelineFactory(validate(load_config_text(CONFIG)), store)
    async with serving(create_app(factory)) as url:
        yield url


def _decoded_seconds(data: bytes, fmt: str | None = None, **options) -> tuple[np.ndarray, int]:
    """PyAV (FFmpeg) decodes ``data``: mono int16 samples and their rate."""
    out = []
    with av.open(io.BytesIO(data), format=fmt, options=options) as container:
        stream = container.streams.audio[0]
        rate = stream.rate or int(options["sample_rate"])
        resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
        for frame in container.decode(stream):
            out += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
        out += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(out).astype(np.int16), rate


async def test_the_openai_sdk_speaks_and_the_audio_says_the_words(base, transcribe):
    client = openai.AsyncOpenAI(base_url=f"{base}/v1", api_key="x")
    reply = await client.audio.speech.create(model="tts-1", voice="alloy", input=TEXT, response_format="wav")
    samples, rate = _decoded_seconds(reply.content)
    assert 3 < len(samples) / rate < 12
    assert rate == 24000  # OpenAI's rate
    assert {"friend", "evening", "harbour"} & set(words(transcribe(samples, rate)))


async def test_a_stream_client_gets_its_first_chunk_before_the_whole_text_is_synthesized(base):
    body = {"text": TEXT + " " + TEXT, "voiceId": "Sarah", "audioConfig": {"audioEncoding": "LINEAR16"}}
    async with aiohttp.ClientSession() as http:
        sent = time.monotonic()
        async with http.post(f"{base}/tts/v1/voice:stream", json=body) as response:
            assert response.status == 200
            stamps, chunks = [], []
            async for line in response.content:
                if line.strip():
                    stamps.append(time.monotonic() - sent)
                    chunks.append(json.loads(line))
    assert all("result" in c for c in chunks) and len(chunks) >= 3, chunks[:1]
    assert stamps[0] < 0.5 * stamps[-1], stamps  # the first clause arrived well before the end
    first = base64.b64decode(chunks[0]["result"]["audioContent"])
    assert first[:4] == b"RIFF"  # LINEAR16: each chunk a WAV of its own


@pytest.mark.parametrize("encoding,fmt,options", [("LINEAR16", None, {}), ("MP3", None, {}), ("OGG_OPUS", None, {}),
                                                  ("FLAC", None, {}),
                                                  ("MULAW", "mulaw", {"sample_rate": "8000", "channels": "1"}),
                                                  ("ALAW", "alaw", {"sample_rate": "8000", "channels": "1"})])
async def test_each_inworld_encoding_decodes_with_a_standard_decoder(base, encoding, fmt, options):
    body = {"text": "Good evening.", "voiceId": "calm", "audioConfig": {"audioEncoding": encoding}}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/tts/v1/voice", json=body) as response:
            assert response.status == 200, await response.text()
            data = base64.b64decode((await response.json())["audioContent"])
    samples, rate = _decoded_seconds(data, fmt, **options)
    assert 0.4 < len(samples) / rate < 3 and np.abs(samples).max() > 0


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac", "wav", "pcm"])
async def test_each_openai_format_decodes(base, fmt):
    client = openai.AsyncOpenAI(base_url=f"{base}/v1", api_key="x")
    reply = await client.audio.speech.create(model="gpt-4o-mini-tts", voice="calm", input="Good evening.",
                                             response_format=fmt)
    if fmt == "pcm":
        samples, rate = np.frombuffer(reply.content, np.int16), 24000
    else:
        samples, rate = _decoded_seconds(reply.content)
    assert 0.4 < len(samples) / rate < 3


async def test_a_second_voice_from_one_yaml_line_is_selectable_and_differs(base):
    async with aiohttp.ClientSession() as http:
        durations = {}
        for voice in ("en_US-joe-medium", "calm"):
            body = {"text": "The lamps are lit along the harbour wall.", "voiceId": voice,
                    "audioConfig": {"audioEncoding": "LINEAR16"}}
            async with http.post(f"{base}/tts/v1/voice", json=body) as response:
                data = base64.b64decode((await response.json())["audioContent"])
            samples, rate = _decoded_seconds(data)
            durations[voice] = len(samples) / rate
        async with http.get(f"{base}/tts/v1/voices") as response:
            listed = {v["voiceId"] for v in (await response.json())["voices"]}
    assert durations["calm"] > 1.1 * durations["en_US-joe-medium"], durations  # speed 0.8
    assert {"calm", "en_US-joe-medium"} <= listed


async def test_wrong_fields_are_refused_naming_them(base):
    cases = [({"text": "Hi", "voice": "calm"}, "voice", "voiceId"), ({"text": "Hi", "model": "x"}, "model", "modelId"),
             ({"text": "x" * 2001}, "text", "2000"), ({"text": "Hi", "audioConfig": {"pitch": 2}}, "audioConfig.pitch",
                                                       "pitch"),
             ({"text": "Hi", "voiceId": "nobody"}, "voiceId", "calm"), ({"text": "Hi", "bogus": 1}, "bogus", "fields")]
    async with aiohttp.ClientSession() as http:
        for body, field, hint in cases:
            async with http.post(f"{base}/tts/v1/voice", json=body) as response:
                answer = await response.json()
                assert response.status == 400, (body, answer)
                assert answer["details"][0]["field"] == field and hint in answer["message"], answer
    client = openai.AsyncOpenAI(base_url=f"{base}/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        await client.audio.speech.create(model="tts-1", voice="nobody", input="Hi")
    assert caught.value.param == "voice"


async def test_a_burst_past_the_queue_is_a_429_and_a_stream_holds_its_place_until_done(store):
    """One running, none waiting: while a stream is being synthesized the next call is a 429
    with Retry-After (both shapes); once it has ended, a call is served again."""
    from fastapi import FastAPI

    from cadence.api.limits import AudioWorkQueue
    from cadence.api.speech import build_speech_service, speech_routes

    app = FastAPI()
    app.include_router(speech_routes(build_speech_service(PipelineFactory(validate(load_config_text(CONFIG)), store)),
                                     AudioWorkQueue(1, 0)))
    async with serving(app) as url, aiohttp.ClientSession() as http:
        async with http.post(f"{url}/tts/v1/voice:stream", json={"text": TEXT * 3}) as streaming:
            assert streaming.status == 200
            await streaming.content.readline()  # it is under way
            async with http.post(f"{url}/tts/v1/voice", json={"text": "Hi."}) as busy:
                assert busy.status == 429 and busy.headers["Retry-After"] == "1"
                assert (await busy.json())["code"] == 8
            async with http.post(f"{url}/v1/audio/speech", json={"model": "tts-1", "voice": "alloy",
                                                                 "input": "Hi."}) as busy:
                assert busy.status == 429 and (await busy.json())["error"]["code"] == "server_busy"
            rest = await streaming.read()
        assert rest.count(b"audioContent") >= 2
        async with http.post(f"{url}/tts/v1/voice", json={"text": "Hi."}) as served:
            assert served.status == 200, await served.text()


async def test_text_with_nothing_to_speak_is_a_400_not_an_empty_clip(base):
    async with aiohttp.ClientSession() as http:
        for text in ("[whispering]", "   ", "[say softly] ..."):
            async with http.post(f"{base}/tts/v1/voice", json={"text": text}) as reply:
                assert reply.status == 400 and (await reply.json())["details"] == [{"field": "text"}], text
            async with http.post(f"{base}/v1/audio/speech", json={"model": "tts-1", "voice": "alloy",
                                                                  "input": text}) as reply:
                assert reply.status == 400 and (await reply.json())["error"]["param"] == "input", text
        async with http.post(f"{base}/tts/v1/voice", json={"text": "[sigh]"}) as reply:  # a sigh is something
            assert reply.status == 200 and len((await reply.json())["audioContent"]) > 1000
        async with http.post(f"{base}/v1/audio/speech", json={"model": "tts-1", "voice": {}, "input": "Hi."}) as reply:
            assert reply.status == 400 and (await reply.json())["error"]["param"] == "voice.id"
