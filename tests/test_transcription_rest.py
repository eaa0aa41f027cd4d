"""POST /v1/audio/transcriptions through the real openai SDK: Piper's speech in WAV and MP3 comes
back as its words in every response format and as a stream; bad requests are OpenAI-shaped 400s."""

from __future__ import annotations

import asyncio

import re
import time

import aiohttp
import numpy as np
import openai
import pytest
from fastapi import FastAPI

from cadence import codecs
from cadence.api.transcription import transcription_routes
from cadence.server import create_app
from conftest import word_error_rate, words
from servers import serving

SAID = "The quick brown fox jumps over the lazy dog near the river bank."
MAX_WER = 0.34


@pytest.fixture(scope="module")
async def client(nova_factory):
    """An AsyncOpenAI client of the nova app, served on loopback."""
    async with serving(create_app(nova_factory)) as base:
        async with openai.AsyncOpenAI(base_url=f"{base}/v1", api_key="x", max_retries=0) as sdk:
            sdk.base = base
            yield sdk


@pytest.fixture(scope="module")
def clips(speak) -> dict[str, tuple[str, bytes, str]]:
    """``SAID`` spoken, as a 16 kHz WAV and a 22.05 kHz MP3 upload."""
    return {"wav": ("said.wav", codecs.encode(speak(SAID, 16000).tobytes(), 16000, "wav"), "audio/wav"),
            "mp3": ("said.mp3", codecs.encode(speak(SAID, 22050).tobytes(), 22050, "mp3"), "audio/mpeg")}


@pytest.mark.parametrize("container", ["wav", "mp3"])
async def test_any_container_is_transcribed_as_json_and_text(client, clips, container):
    started = time.perf_counter()
    result = await client.audio.transcriptions.create(file=clips[container], model="whisper-1")
    elapsed = time.perf_counter() - started
    assert word_error_rate(SAID, result.text) <= MAX_WER, result.text
    assert result.usage is not None and result.usage.type == "duration" and 3 < result.usage.seconds < 6
    print(f"{container}: one transcription of {result.usage.seconds:.1f} s took {elapsed:.2f} s")
    text = await client.audio.transcriptions.create(file=clips[container], model="whisper-tiny.en",
                                                    response_format="text", language="en")
    assert isinstance(text, str) and text.endswith("\n") and words(text) == words(result.text)


async def test_verbose_json_has_segments_and_monotone_word_timestamps(client, clips):
    result = await client.audio.transcriptions.create(file=clips["wav"], model="gpt-4o-transcribe",
                                                      response_format="verbose_json",
                                                      timestamp_granularities=["word", "segment"])
    assert result.language == "en" and 3 < result.duration < 6 and result.text
    assert word_error_rate(SAID, result.text) <= MAX_WER
    assert result.segments and result.segments[0].id == 0 and result.segments[0].tokens
    assert all(0 <= s.start < s.end <= result.duration + 0.01 for s in result.segments)
    assert [w for s in result.segments for w in words(s.text)] == words(result.text)
    assert result.words and words(" ".join(w.word for w in result.words)) == words(result.text)
    starts = [w.start for w in result.words]
    assert starts == sorted(starts) and all(w.start <= w.end <= result.duration + 0.01 for w in result.words)
    # Words alone: no segments (OpenAI's shape), and none of either without verbose_json.
    only_words = await client.audio.transcriptions.create(file=clips["wav"], model="whisper-1",
                                                          response_format="verbose_json",
                                                          timestamp_granularities=["word"])
    assert only_words.segments is None and only_words.words


async def test_srt_and_vtt_cues(client, clips):
    srt = await client.audio.transcriptions.create(file=clips["wav"], model="whisper-1", response_format="srt")
    stamp = r"\d\d:\d\d:\d\d{sep}\d\d\d --> \d\d:\d\d:\d\d{sep}\d\d\d"
    assert re.fullmatch(rf"(\d+\n{stamp.format(sep=',')}\n[^\n]+\n\n)+", srt), srt
    assert srt.startswith("1\n00:00:00,") and word_error_rate(SAID, srt.split("\n", 2)[2]) <= MAX_WER
    vtt = await client.audio.transcriptions.create(file=clips["mp3"], model="whisper-1", response_format="vtt")
    assert re.fullmatch(rf"WEBVTT\n\n({stamp.format(sep='[.]')}\n[^\n]+\n\n)+", vtt), vtt


async def test_a_stream_yields_deltas_then_done_through_the_sdk(client, clips):
    stream = await client.audio.transcriptions.create(file=clips["wav"], model="gpt-4o-mini-transcribe", stream=True)
    events = [event async for event in stream]
    assert [e.type for e in events[:-1]] == ["transcript.text.delta"] * (len(events) - 1) and len(events) >= 2
    done = events[-1]
    assert done.type == "transcript.text.done" and word_error_rate(SAID, done.text) <= MAX_WER
    assert "".join(e.delta for e in events[:-1]).strip() == done.text


async def test_silence_is_the_empty_transcript(client):
    silence = codecs.encode(np.zeros(32000, dtype=np.int16).tobytes(), 16000, "wav")
    result = await client.audio.transcriptions.create(file=("quiet.wav", silence, "audio/wav"), model="whisper-1")
    assert result.text == ""
    stream = await client.audio.transcriptions.create(file=("quiet.wav", silence, "audio/wav"), model="whisper-1",
                                                      stream=True)
    assert [(e.type, e.text) async for e in stream] == [("transcript.text.done", "")]
    header_only = codecs.encode(b"", 16000, "wav")  # a WAV of no samples: silence too, not a bad file
    result = await client.audio.transcriptions.create(file=("none.wav", header_only, "audio/wav"), model="whisper-1")
    assert result.text == ""


@pytest.mark.parametrize("kwargs, param, needle", [
    ({"model": "whisper-2"}, "model", "whisper-1"),  # the message lists the accepted names
    ({"model": "gpt-4o-transcribe-diarize"}, "model", "diarization"),
    ({"file": ("junk.mp3", b"not audio at all " * 64, "audio/mpeg")}, "file", "could not be decoded"),
    ({"response_format": "diarized_json"}, "response_format", "verbose_json"),
    ({"response_format": "srt", "stream": True}, "response_format", "stream"),
    ({"language": "de"}, "language", "whisper-tiny.en"),
    ({"temperature": 3}, "temperature", "0 to 1"),
    ({"response_format": "verbose_json", "timestamp_granularities": ["letter"]}, "timestamp_granularities", "word"),
    ({"timestamp_granularities": ["word"]}, "timestamp_granularities", "verbose_json"),  # json has no timestamps
    ({"include": ["logprobs"]}, "include[]", "log probabilities"),
    ({"chunking_strategy": {"type": "server_vad"}}, "chunking_strategy", "auto"),
    ({"extra_body": {"diarize": "true"}}, "diarize", "unknown field"),
])
async def test_bad_requests_are_openai_400s(client, clips, kwargs, param, needle):
    with pytest.raises(openai.BadRequestError) as info:
        await client.audio.transcriptions.create(**{"file": clips["wav"], "model": "whisper-1", **kwargs})
    assert info.value.status_code == 400 and info.value.param == param, info.value.body
    assert needle in info.value.body["message"], info.value.body


async def test_a_missing_file_and_a_server_without_stt(client):
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{client.base}/v1/audio/transcriptions", data={"model": "whisper-1"}) as reply:
            assert reply.status == 400 and (await reply.json())["error"]["param"] == "file", await reply.text()
        app = FastAPI()
        app.include_router(transcription_routes(None))
        form = aiohttp.FormData()
        form.add_field("file", b"RIFF", filename="a.wav")
        async with serving(app) as base, http.post(f"{base}/v1/audio/transcriptions", data=form) as reply:
            error = (await reply.json())["error"]
            assert reply.status == 501 and reply.headers["x-should-retry"] == "false"
    assert error["code"] == "stt_not_configured" and "no stt stage" in error["message"]


async def test_a_burst_past_the_queue_is_a_429_and_the_admitted_ones_finish(nova_factory, clips):
    """One running, none waiting: of three at once, one transcribes, the rest get 429 with Retry-After."""
    from cadence.api.limits import AudioWorkQueue
    from cadence.api.transcription import WhisperTranscriber

    app = FastAPI()
    app.include_router(transcription_routes(WhisperTranscriber.of(nova_factory), AudioWorkQueue(1, 0)))

    async def post(http, base):
        form = aiohttp.FormData()
        form.add_field("file", clips["wav"][1], filename="said.wav")
        form.add_field("model", "whisper-1")
        async with http.post(f"{base}/v1/audio/transcriptions", data=form) as reply:
            return reply.status, reply.headers.get("Retry-After"), await reply.json()

    async with serving(app) as base, aiohttp.ClientSession() as http:
        results = await asyncio.gather(*(post(http, base) for _ in range(3)))
        statuses = sorted(r[0] for r in results)
        assert statuses == [200, 429, 429], results
        busy = [r for r in results if r[0] == 429]
        assert all(r[1] == "1" and r[2]["error"]["code"] == "server_busy" for r in busy), busy
        assert "fox" in next(r for r in results if r[0] == 200)[2]["text"].lower()
        again = await post(http, base)  # the place is given back
        assert again[0] == 200, again
