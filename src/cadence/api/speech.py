"""Speech over plain HTTP, in the two shapes apps already call.

Inworld's: ``POST /tts/v1/voice`` (the whole clip, base64 ``audioContent``),
``POST /tts/v1/voice:stream`` (newline-delimited JSON, one ``{"result": {"audioContent"}}``
per clause or sentence as it is synthesized; with LINEAR16 each chunk is a WAV of its own)
and ``GET /tts/v1/voices``. OpenAI's: ``POST /v1/audio/speech`` (the audio itself, streamed as
it is made, or server-sent ``speech.audio.delta`` events with ``stream_format: sse``), so the
openai SDK's ``client.audio.speech.create`` works unchanged. A field this server cannot honour
is a 400 naming it, never ignored; a realtime name (``voice``, ``model``) in an Inworld body
names the REST one (``voiceId``, ``modelId``).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Request
from loguru import logger
from starlette.background import BackgroundTask
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cadence import codecs
from cadence.api.limits import AudioWorkQueue, QueueFull, Ticket
from cadence.router.http import openai_error
from cadence.voice.speech import SpeechError, SpeechRequest, SpeechService, speakable

MAX_INWORLD_CHARS = 2000
MAX_OPENAI_CHARS = 4096
INWORLD_ENCODINGS = {"LINEAR16": "wav", "MP3": "mp3", "OGG_OPUS": "opus", "MULAW": "mulaw", "ALAW": "alaw",
                     "FLAC": "flac"}
OPENAI_FORMATS = {"mp3": "mp3", "opus": "opus", "aac": "aac", "flac": "flac", "wav": "wav", "pcm": "pcm"}
REALTIME_NAMES = {"voice": "voiceId", "model": "modelId"}


class AudioConfig(BaseModel):
    """Inworld's ``audioConfig``."""

    model_config = ConfigDict(extra="forbid")

    audioEncoding: Literal["LINEAR16", "MP3", "OGG_OPUS", "MULAW", "ALAW", "FLAC"] = "MP3"
    sampleRateHertz: int | None = Field(None, ge=8000, le=48000)
    speakingRate: float = Field(1.0, ge=0.5, le=1.5)
    pitch: float = Field(0.0, description="not supported: only 0")


class InworldBody(BaseModel):
    """Inworld's ``/tts/v1/voice`` body."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1)
    voiceId: str | None = None
    modelId: str | None = None
    deliveryMode: Literal["STABLE", "BALANCED", "CREATIVE"] | None = None
    audioConfig: AudioConfig = Field(default_factory=AudioConfig)
    temperature: float = Field(1.0, gt=0, le=2, description="expressiveness relative to the voice's own")


class OpenAIBody(BaseModel):
    """OpenAI's ``/v1/audio/speech`` body."""

    model_config = ConfigDict(extra="forbid")

    model: str
    input: str = Field(min_length=1)
    voice: str | dict[str, str]
    instructions: str | None = Field(None, max_length=4096, description="a steering line (its first words steer)")
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "mp3"
    speed: float = Field(1.0, ge=0.25, le=4.0)
    stream_format: Literal["audio", "sse"] = "audio"


INWORLD_CODES = {400: 3, 429: 8, 501: 12}  # google.rpc codes: INVALID_ARGUMENT, RESOURCE_EXHAUSTED, UNIMPLEMENTED


def _inworld_error(status: int, message: str, param: str | None = None, retry_after: int | None = None
                   ) -> JSONResponse:
    return JSONResponse({"code": INWORLD_CODES.get(status, 13), "message": message,
                         "details": [{"field": param}] if param else []}, status_code=status,
                        headers={"Retry-After": str(retry_after)} if retry_after else None)


def _first_error(exc: ValidationError) -> tuple[str, str]:
    error = exc.errors(include_url=False)[0]
    param = ".".join(str(p) for p in error["loc"])
    return param, f"{param}: {error['msg']}"


def speech_routes(service: SpeechService | None, queue: AudioWorkQueue | None = None) -> APIRouter:
    """Routes over ``service`` (None: the config has no tts stage; every route says so); at most
    ``queue``'s jobs synthesize or wait at once (default: one running, eight waiting)."""
    api = APIRouter()
    queue = queue or AudioWorkQueue(1, 8)

    async def inworld_request(request: Request) -> tuple[SpeechRequest, InworldBody] | JSONResponse:
        if service is None:
            return _inworld_error(501, "this config has no tts stage to speak with")
        try:
            raw = await request.json()
        except ValueError:
            return _inworld_error(400, "the body must be JSON")
        if not isinstance(raw, dict):
            return _inworld_error(400, "the body must be a JSON object")
        for name, rest in REALTIME_NAMES.items():
            if name in raw:
                return _inworld_error(400, f"'{name}' is the realtime session's field; the REST TTS API takes"
                                      f" '{rest}'", name)
        try:
            body = InworldBody.model_validate(raw)
        except ValidationError as exc:
            param, message = _first_error(exc)
            return _inworld_error(400, f"{message} (fields: {', '.join(InworldBody.model_fields)})", param)
        if len(body.text) > MAX_INWORLD_CHARS:
            return _inworld_error(400, f"text has {len(body.text)} characters; the limit is {MAX_INWORLD_CHARS}",
                                  "text")
        if not speakable(body.text):
            return _inworld_error(400, "text has nothing to speak once its tags are taken out", "text")
        if body.audioConfig.pitch != 0:
            return _inworld_error(400, "audioConfig.pitch is not supported by this server's voices (Piper);"
                                  " leave it 0", "audioConfig.pitch")
        try:
            voice = service.voice(body.voiceId, "voiceId")
        except SpeechError as exc:
            return _inworld_error(400, str(exc), exc.param)
        if body.temperature != 1.0 and voice.engine != "piper":
            return _inworld_error(400, f"temperature: voice {voice.name!r} ({voice.engine}) has no expressiveness"
                                  " setting; leave it 1", "temperature")
        if body.modelId is not None and not (body.modelId.startswith("inworld-tts") or body.modelId == voice.engine):
            return _inworld_error(400, f"modelId {body.modelId!r} is not served here; use '{voice.engine}' (or an"
                                  " inworld-tts model id, which runs it)", "modelId")
        return SpeechRequest(body.text, voice, body.deliveryMode, speed=body.audioConfig.speakingRate,
                             expressiveness=body.temperature), body

    async def inworld(request: Request, stream: bool) -> Response:
        checked = await inworld_request(request)
        if isinstance(checked, JSONResponse):
            return checked
        speech, body = checked
        try:
            ticket = queue.admit()
        except QueueFull as exc:
            return _inworld_error(429, str(exc), retry_after=1)
        try:
            rate = await service.sample_rate(speech.voice)
        except Exception as exc:
            ticket.release()
            return _inworld_error(500, f"the voice {speech.voice.name!r} failed to load: {exc}")
        fmt, out_rate = INWORLD_ENCODINGS[body.audioConfig.audioEncoding], body.audioConfig.sampleRateHertz
        if stream:
            try:
                lines = await _started(_ndjson(service, speech, rate, fmt, out_rate, ticket))
            except Exception as exc:
                return _inworld_error(500, f"synthesis failed: {exc}")
            return StreamingResponse(lines, media_type="application/x-ndjson", background=BackgroundTask(ticket.release))
        try:
            async with ticket:
                pcm = b"".join([piece async for piece in service.pcm(speech)])
                if not pcm:
                    raise RuntimeError("the voice produced no audio")
                audio = await asyncio.to_thread(codecs.encode, pcm, rate, fmt, out_rate=out_rate)
        except Exception as exc:
            logger.exception("speech synthesis failed")
            return _inworld_error(500, f"synthesis failed: {exc}")
        return JSONResponse({"audioContent": base64.b64encode(audio).decode(),
                             "usage": {"processedCharactersCount": len(speech.text), "modelId": speech.voice.engine}})

    @api.post("/tts/v1/voice")
    async def inworld_voice(request: Request) -> Response:
        return await inworld(request, stream=False)

    @api.post("/tts/v1/voice:stream")
    async def inworld_stream(request: Request) -> Response:
        return await inworld(request, stream=True)

    @api.get("/tts/v1/voices")
    async def inworld_voices() -> JSONResponse:
        if service is None:
            return JSONResponse({"voices": []})
        voices = []
        for item in service.catalog.listing()["data"]:
            voices.append({"voiceId": item["id"], "displayName": item["id"], "description": item["description"],
                           "languages": [item["language"]] if item["language"] else [],
                           "tags": [t for t in (item["gender"], item["engine"]) if t], "aliases": item["aliases"]})
        return JSONResponse({"voices": voices})

    @api.post("/v1/audio/speech")
    async def openai_speech(request: Request) -> Response:
        if service is None:
            refusal = openai_error(501, "this config has no tts stage to speak with", code="tts_not_configured")
            refusal.headers["x-should-retry"] = "false"  # every worker has the same config: no retry helps
            return refusal
        try:
            raw = await request.json()
            body = OpenAIBody.model_validate(raw)
        except ValueError as exc:
            if isinstance(exc, ValidationError):
                param, message = _first_error(exc)
                return openai_error(400, message, code="invalid_value", param=param)
            return openai_error(400, "the body must be JSON", code="invalid_json")
        if len(body.input) > MAX_OPENAI_CHARS:
            return openai_error(400, f"input has {len(body.input)} characters; the limit is {MAX_OPENAI_CHARS}",
                                code="invalid_value", param="input")
        if not speakable(body.input):
            return openai_error(400, "input has nothing to speak once its tags are taken out", code="invalid_value",
                                param="input")
        if isinstance(body.voice, dict) and not isinstance(body.voice.get("id"), str):
            return openai_error(400, "voice must be a name or {\"id\": name}", code="invalid_value", param="voice.id")
        name = body.voice.get("id") if isinstance(body.voice, dict) else body.voice
        try:
            voice = service.voice(name, "voice")
        except SpeechError as exc:
            return openai_error(400, str(exc), code="invalid_value", param=exc.param)
        speech = SpeechRequest(body.input, voice, steering=body.instructions, speed=body.speed)
        try:
            ticket = queue.admit()
        except QueueFull as exc:
            return openai_error(429, str(exc), code="server_busy", retry_after=1)
        try:
            rate = await service.sample_rate(voice)
        except Exception as exc:
            ticket.release()
            return openai_error(500, f"the voice {voice.name!r} failed to load: {exc}", code="tts_failed")
        fmt = OPENAI_FORMATS[body.response_format]
        audio = _audio(service, speech, rate, fmt, ticket)
        sse = body.stream_format == "sse"
        try:
            started = await _started(_sse(audio, speech) if sse else audio)
        except Exception as exc:
            return openai_error(500, f"synthesis failed: {exc}", code="tts_failed")
        return StreamingResponse(started, media_type="text/event-stream" if sse else codecs.FORMATS[fmt][0],
                                 background=BackgroundTask(ticket.release))

    return api


OPENAI_RATE = 24000  # OpenAI's speech is 24 kHz (its pcm is documented so): clients assume it


async def _started(body: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """``body`` with its first piece already made, so that a voice failing before any audio
    (or making none) is a 500, not a 200 with nothing in it; after the status line a failure
    is the body's last line or event (each generator below says it in its own shape)."""
    try:
        first = await anext(body)
    except StopAsyncIteration:
        raise RuntimeError("the voice produced no audio") from None
    except Exception:
        logger.exception("speech synthesis failed")
        raise

    async def chained():
        yield first
        async for piece in body:
            yield piece

    return chained()


async def _ndjson(service: SpeechService, speech: SpeechRequest, rate: int, fmt: str, out_rate: int | None,
                  ticket: Ticket):
    started = False
    try:
        async with ticket:
            async for pcm in service.pcm(speech):
                audio = await asyncio.to_thread(codecs.encode, pcm, rate, fmt, out_rate=out_rate)
                started = True
                yield json.dumps({"result": {"audioContent": base64.b64encode(audio).decode()}}) + "\n"
    except Exception as exc:
        if not started:
            raise
        logger.exception("speech synthesis failed")  # the status line is gone: the failure is the last line
        yield json.dumps({"error": {"code": 13, "message": f"synthesis failed: {exc}"}}) + "\n"


async def _audio(service: SpeechService, speech: SpeechRequest, rate: int, fmt: str, ticket: Ticket):
    async with ticket:
        encoder = codecs.StreamEncoder(fmt, rate, out_rate=OPENAI_RATE)
        async for pcm in service.pcm(speech):
            if chunk := await asyncio.to_thread(encoder.feed, pcm):
                yield chunk
        if tail := await asyncio.to_thread(encoder.close):
            yield tail


async def _sse(audio, speech: SpeechRequest):
    started = False
    try:
        async for chunk in audio:
            started = True
            yield f"data: {json.dumps({'type': 'speech.audio.delta', 'audio': base64.b64encode(chunk).decode()})}\n\n"
    except Exception as exc:
        if not started:
            raise
        logger.exception("speech synthesis failed")  # the status line is gone: the failure is an error event
        yield f"data: {json.dumps({'type': 'error', 'error': {'message': f'synthesis failed: {exc}'}})}\n\n"
        return
    usage = {"input_tokens": len(speech.text.split()), "output_tokens": 0, "total_tokens": len(speech.text.split())}
    yield f"data: {json.dumps({'type': 'speech.audio.done', 'usage': usage})}\n\n"


def build_speech_service(factory: Any) -> SpeechService | None:
    """The config's speech service, or None without a tts stage."""
    from cadence.voice.catalog import pipeline_catalog

    tts = factory.config.params_of("tts")
    if tts is None:
        return None
    catalog = pipeline_catalog(tts, factory.config.config.voices)
    return SpeechService(catalog, factory.store.piper_voice, tts.delivery_mode)
