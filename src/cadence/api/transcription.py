"""``POST /v1/audio/transcriptions``: OpenAI's transcription API over the stt stage's Whisper.

The openai SDK's ``client.audio.transcriptions.create(...)`` works unchanged: a multipart
upload (``file``, ``model``, ``language``, ``prompt``, ``response_format``,
``timestamp_granularities[]``, ``temperature``, ``stream``) answered as ``json``, ``text``,
``verbose_json``, ``srt`` or ``vtt``, or with ``stream=true`` as server-sent
``transcript.text.delta`` events (one per Whisper segment, as it is decoded) and one
``transcript.text.done``. Any container PyAV (FFmpeg) reads is accepted (cadence.codecs).

- Models: the stt stage's own model name and the stock OpenAI names (``whisper-1``,
  ``gpt-4o-transcribe``, ...) all run the stage's local Whisper, with every response format
  (OpenAI limits the gpt-4o models to json/text; here they are one model). A missing
  ``model`` is the stage's model. ``gpt-4o-transcribe-diarize`` is refused: nothing here
  tells speakers apart, and a transcript without speakers would pass for one with them.
- ``server.rest_audio_concurrency`` transcriptions run at once (default one: on 2 cores a
  second in parallel only makes both slower), ``server.rest_audio_queue`` wait (holding no
  thread), the next is a 429. Live sessions' STT shares the model but not this queue, so
  REST work never holds a spoken turn up.
- Fields this server cannot honour (``include[]``, speaker names, a ``chunking_strategy``
  other than ``auto``) and unknown fields are a 400 naming them, never ignored.
- A config with no stt stage answers 501 (``stt_not_configured``, ``x-should-retry: false``):
  every worker of a fleet has the same config, so no retry or other worker would do better.
- Silence, or a file with an audio stream and no samples, is the empty transcript, not an
  error. ``verbose_json`` reports ``language`` as the ISO-639-1 code (OpenAI: "english").
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from loguru import logger
from starlette.background import BackgroundTask
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

from cadence import codecs
from cadence.api.limits import AudioWorkQueue, QueueFull, Ticket
from cadence.router.http import openai_error

RATE = 16000  # Whisper's input rate
FORMATS = ("json", "text", "verbose_json", "srt", "vtt")
OPENAI_MODELS = ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe", "gpt-4o-mini-transcribe-2025-12-15",
                 "gpt-transcribe")
REFUSED_MODELS = {"gpt-4o-transcribe-diarize": "speaker diarization is not served here"}
MAX_UPLOAD_BYTES = 25 * 1024 * 1024  # OpenAI's own limit on the file
MAX_SECONDS = 600  # longer is refused while decoding (tiny.en on 2 cores: ~8x real time, ~75 s for 600 s)
GRANULARITIES = ("word", "segment")
KNOWN_FIELDS = ("file", "model", "language", "prompt", "response_format", "temperature", "timestamp_granularities[]",
                "timestamp_granularities", "stream", "chunking_strategy", "include[]", "include",
                "known_speaker_names[]", "known_speaker_references[]")


class TranscriptionError(Exception):
    """A request this route refuses: the HTTP status and the OpenAI error's param and code."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = "invalid_value"):
        super().__init__(message)
        self.status, self.param, self.code = status, param, code

    def response(self) -> JSONResponse:
        """The OpenAI-shaped error response."""
        return openai_error(self.status, str(self), param=self.param, code=self.code)


@dataclass
class Options:
    """What one request asks of the transcriber."""

    language: str | None = None  # None: Whisper detects it
    prompt: str | None = None
    temperature: float = 0.0  # 0: Whisper's fallback ladder, as OpenAI's "0 means automatic"
    words: bool = False  # word timestamps (extra work: only when asked)


@dataclass
class Transcript:
    """A finished transcription: the detected language, the audio's length and its segments."""

    language: str
    duration: float
    segments: list[dict[str, Any]]
    words: list[dict[str, Any]] | None = None

    @property
    def text(self) -> str:
        """The whole text, as OpenAI gives it (segments joined, no outer spaces)."""
        return "".join(s["text"] for s in self.segments).strip()


class WhisperTranscriber:
    """Transcribes whole clips with the stt stage's shared faster-whisper model, one at a time."""

    def __init__(self, model_name: str, store: Any, *, compute_type: str = "int8", beam_size: int = 1,
                 prompt: str | None = None):
        self.model_name, self.store = model_name, store
        self.compute_type, self.beam_size, self.prompt = compute_type, beam_size, prompt

    @classmethod
    def of(cls, factory: Any) -> WhisperTranscriber | None:
        """The transcriber of ``factory``'s stt stage, or None when its config has none."""
        params = factory.config.params_of("stt")
        if params is None:
            return None
        return cls(params.model, factory.store, compute_type=params.compute_type, beam_size=params.beam_size,
                   prompt=params.prompt)

    @property
    def accepted_models(self) -> list[str]:
        """The model names a request may send (all run this one model)."""
        return [self.model_name, *OPENAI_MODELS]

    def accepts(self, name: str) -> bool:
        """Whether ``name`` is one of ``accepted_models`` (without regard to case, like voices)."""
        return name.lower() in (m.lower() for m in self.accepted_models)

    def model(self) -> Any:
        """The shared WhisperModel (the store loads it once per process; the server prepares it)."""
        return self.store.whisper(self.model_name, compute_type=self.compute_type)

    async def check_language(self, language: str) -> str:
        """``language`` as the ISO-639-1 code the model takes; TranscriptionError if it cannot."""
        code = language.strip().lower().replace("_", "-").split("-")[0]
        supported = (await asyncio.to_thread(self.model)).supported_languages
        if code not in supported:
            # An English-only model would otherwise answer in English whatever was spoken
            # (pipecat's _unsupported_language refuses the same pairing in live sessions).
            only = f"only {sorted(supported)}" if len(supported) < 10 else f"{len(supported)} languages"
            raise TranscriptionError(400, f"model {self.model_name!r} cannot transcribe {language!r}: it supports"
                                          f" {only}; use a multilingual Whisper model for it", "language",
                                     "unsupported_language")
        return code

    async def segments(self, audio: Any, options: Options, transcript: Transcript, ticket: Ticket
                       ) -> AsyncIterator[dict[str, Any]]:
        """Each segment as Whisper decodes it, also added to ``transcript`` (``ticket``'s slot held throughout)."""
        if not len(audio):
            ticket.release()
            return  # no samples: nothing to decode (faster-whisper's features need some)
        async with ticket:
            # Segments come lazily from faster-whisper's generator: each next() decodes one, in a
            # thread, so the event loop (and live sessions) go on meanwhile.
            model = await asyncio.to_thread(self.model)
            found, info = await asyncio.to_thread(self._start, model, audio, options)
            transcript.language = info.language
            done = object()
            while (segment := await asyncio.to_thread(next, found, done)) is not done:
                shaped = _segment(len(transcript.segments), segment)
                transcript.segments.append(shaped)
                if transcript.words is not None:
                    transcript.words += [{"word": w.word.strip(), "start": round(float(w.start), 3),
                                          "end": round(float(w.end), 3)} for w in segment.words or ()]
                yield shaped

    def empty(self, audio: Any, options: Options) -> Transcript:
        """The transcript ``segments`` fills in for ``audio``."""
        return Transcript(options.language or "en", round(len(audio) / RATE, 3), [], [] if options.words else None)

    async def transcribe(self, audio: Any, options: Options, ticket: Ticket) -> Transcript:
        """The whole transcript of ``audio`` (mono float32 at 16 kHz)."""
        transcript = self.empty(audio, options)
        async for _ in self.segments(audio, options, transcript, ticket):
            pass
        return transcript

    def _start(self, model: Any, audio: Any, options: Options) -> tuple[Iterator[Any], Any]:
        # Temperatures from the asked one up in Whisper's 0.2 steps: a decode that looks wrong
        # (repetitive, unlikely) is redone hotter, as faster-whisper's default ladder does from 0.
        ladder = tuple(round(options.temperature + 0.2 * i, 2) for i in range(6)
                       if options.temperature + 0.2 * i <= 1.0 + 1e-9)
        segments, info = model.transcribe(audio, language=options.language, beam_size=self.beam_size,
                                          temperature=ladder, initial_prompt=options.prompt or self.prompt,
                                          word_timestamps=options.words)
        return iter(segments), info


def _segment(index: int, segment: Any) -> dict[str, Any]:
    """A faster-whisper Segment in OpenAI's shape (ids from 0, plain floats)."""
    return {"id": index, "seek": int(segment.seek), "start": round(float(segment.start), 3),
            "end": round(float(segment.end), 3), "text": segment.text, "tokens": list(segment.tokens),
            "temperature": float(segment.temperature or 0.0), "avg_logprob": float(segment.avg_logprob),
            "compression_ratio": float(segment.compression_ratio), "no_speech_prob": float(segment.no_speech_prob)}


def _timestamp(seconds: float, separator: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}{separator}{rest % 1000:03d}"


def subtitles(transcript: Transcript, kind: str) -> str:
    """``srt`` or ``vtt`` cues, one per segment (empty segments skipped; an SRT's count stays gapless)."""
    cues = [s for s in transcript.segments if s["text"].strip()]
    if kind == "srt":
        return "".join(f"{n}\n{_timestamp(s['start'], ',')} --> {_timestamp(s['end'], ',')}\n{s['text'].strip()}\n\n"
                       for n, s in enumerate(cues, 1))
    return "WEBVTT\n\n" + "".join(f"{_timestamp(s['start'], '.')} --> {_timestamp(s['end'], '.')}\n"
                                  f"{s['text'].strip()}\n\n" for s in cues)


def _render(transcript: Transcript, fmt: str, granularities: set[str]) -> Response:
    usage = {"type": "duration", "seconds": transcript.duration}
    if fmt == "json":
        return JSONResponse({"text": transcript.text, "usage": usage})
    if fmt == "text":
        return PlainTextResponse(transcript.text + "\n")  # OpenAI ends the text with a newline too
    if fmt in ("srt", "vtt"):
        return PlainTextResponse(subtitles(transcript, fmt), media_type="text/vtt" if fmt == "vtt" else None)
    body: dict[str, Any] = {"task": "transcribe", "language": transcript.language, "duration": transcript.duration,
                            "text": transcript.text}
    if not granularities or "segment" in granularities:  # OpenAI: segments unless only words are asked for
        body["segments"] = transcript.segments
    if transcript.words is not None:
        body["words"] = transcript.words
    body["usage"] = usage
    return JSONResponse(body)


def _sse(event: dict[str, Any]) -> str:
    return f"data: {json.dumps(event, ensure_ascii=False)}\n\n"


async def _stream(transcriber: WhisperTranscriber, audio: Any, options: Options, ticket: Ticket
                  ) -> AsyncIterator[str]:
    """``transcript.text.delta`` per segment, then ``transcript.text.done``; the deltas add up to its text."""
    text = ""
    try:
        async for segment in transcriber.segments(audio, options, transcriber.empty(audio, options), ticket):
            delta = segment["text"] if text else segment["text"].lstrip()
            if delta:
                text += delta
                yield _sse({"type": "transcript.text.delta", "delta": delta})
    except Exception as exc:  # noqa: BLE001 - the status is sent: the SDK raises on an event with "error"
        logger.exception("transcription failed")
        yield _sse({"type": "error", "error": {"message": f"transcription failed: {exc}", "type": "api_error",
                                               "param": None, "code": "transcription_failed"}})
        return
    yield _sse({"type": "transcript.text.done", "text": text.strip()})


def _flag(value: str | None, param: str) -> bool:
    if value is None or value.strip().lower() in ("", "false", "0", "no", "off"):
        return False
    if value.strip().lower() in ("true", "1", "yes", "on"):
        return True
    raise TranscriptionError(400, f"{param} must be true or false, got {value!r}", param)


async def _parse(request: Request, transcriber: WhisperTranscriber) -> tuple[bytes, Options, str, set[str], bool]:
    """Check the upload; the audio file's bytes, the options, format, granularities and stream flag."""
    if int(request.headers.get("content-length") or 0) > MAX_UPLOAD_BYTES + 64 * 1024:  # refuse before reading
        raise TranscriptionError(413, f"the upload is over the {MAX_UPLOAD_BYTES >> 20} MB limit", "file",
                                 "file_too_large")
    try:
        form = await request.form(max_files=1, max_fields=100)
    except (MultiPartException, HTTPException) as exc:  # starlette turns a bad body into HTTPException 400
        detail = getattr(exc, "detail", None) or getattr(exc, "message", exc)
        raise TranscriptionError(400, f"the multipart body could not be read: {detail}", None,
                                 "invalid_request") from exc
    fields = {key: value for key, value in form.multi_items() if isinstance(value, str)}
    for key in form:
        if key.startswith("chunking_strategy["):  # the SDK sends an object as chunking_strategy[type]=...
            raise TranscriptionError(400, "chunking_strategy: only 'auto' is supported (Whisper cuts the audio at"
                                          " its own 30 s windows)", "chunking_strategy", "unsupported_value")
        if key not in KNOWN_FIELDS:
            raise TranscriptionError(400, f"unknown field {key!r}; this endpoint takes {', '.join(KNOWN_FIELDS)}",
                                     key, "unknown_parameter")
    for key in ("include[]", "include", "known_speaker_names[]", "known_speaker_references[]"):
        if form.getlist(key):
            raise TranscriptionError(400, f"{key} is not supported: Whisper here gives no log probabilities and"
                                          " tells no speakers apart", key, "unsupported_parameter")
    chunking = fields.get("chunking_strategy", "").strip()
    if chunking and chunking != "auto":
        raise TranscriptionError(400, "chunking_strategy: only 'auto' is supported (Whisper cuts the audio at its"
                                      f" own 30 s windows), got {chunking!r}", "chunking_strategy",
                                 "unsupported_value")
    model = fields.get("model", "").strip() or transcriber.model_name
    if model.lower() in REFUSED_MODELS:
        raise TranscriptionError(400, f"model {model!r} is not served: {REFUSED_MODELS[model.lower()]}; accepted"
                                      f" models: {', '.join(transcriber.accepted_models)}", "model", "model_not_found")
    if not transcriber.accepts(model):
        raise TranscriptionError(400, f"unknown transcription model {model!r}; accepted models (all run"
                                      f" {transcriber.model_name}): {', '.join(transcriber.accepted_models)}",
                                 "model", "model_not_found")
    fmt = fields.get("response_format", "").strip() or "json"
    if fmt not in FORMATS:
        raise TranscriptionError(400, f"response_format must be one of {', '.join(FORMATS)}, got {fmt!r}",
                                 "response_format", "unsupported_value")
    stream = _flag(fields.get("stream"), "stream")
    if stream and fmt not in ("json", "text"):
        raise TranscriptionError(400, f"stream=true sends transcript.text events: response_format must be json or"
                                      f" text, got {fmt!r}", "response_format", "unsupported_value")
    try:
        temperature = float(fields.get("temperature") or 0)
    except ValueError:
        temperature = -1.0
    if not 0 <= temperature <= 1:
        raise TranscriptionError(400, f"temperature must be a number from 0 to 1, got {fields['temperature']!r}",
                                 "temperature")
    # The SDK sends lists as repeated "timestamp_granularities[]" fields; curl users may leave the brackets off.
    granularities = {g.strip() for key in ("timestamp_granularities[]", "timestamp_granularities")
                     for g in form.getlist(key) if isinstance(g, str) and g.strip()}
    if unknown := granularities - set(GRANULARITIES):
        raise TranscriptionError(400, f"timestamp_granularities must be word and/or segment, got"
                                      f" {sorted(unknown)}", "timestamp_granularities")
    if granularities and fmt != "verbose_json":
        raise TranscriptionError(400, f"timestamp_granularities needs response_format verbose_json (timestamps"
                                      f" have nowhere to go in {fmt!r})", "timestamp_granularities")
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise TranscriptionError(400, "file is required: upload the audio as the multipart field 'file'", "file",
                                 "missing_required_parameter")
    if upload.size is not None and upload.size > MAX_UPLOAD_BYTES:
        raise TranscriptionError(413, f"the file is over the {MAX_UPLOAD_BYTES >> 20} MB limit", "file",
                                 "file_too_large")
    try:
        data = await upload.read()
    finally:
        await upload.close()
    language = fields.get("language", "").strip() or None
    if language is not None:
        language = await transcriber.check_language(language)
    options = Options(language=language, prompt=fields.get("prompt") or None, temperature=temperature,
                      words=fmt == "verbose_json" and "word" in granularities)
    return data, options, fmt, granularities, stream


async def _decode(data: bytes) -> Any:
    import numpy as np

    try:
        return await asyncio.to_thread(codecs.decode, data, RATE, max_seconds=MAX_SECONDS)
    except ValueError as exc:
        # A valid file whose audio stream holds no samples is silence, not a bad file.
        if "no audio samples" in str(exc):
            return np.zeros(0, dtype=np.float32)
        raise TranscriptionError(400, str(exc), "file", "invalid_file") from exc


def transcription_routes(transcriber: WhisperTranscriber | None, queue: AudioWorkQueue | None = None) -> APIRouter:
    """``POST /v1/audio/transcriptions`` over ``transcriber`` (None: the config has no stt stage); at
    most ``queue``'s jobs transcribe or wait at once (default: one running, eight waiting)."""
    api = APIRouter()
    queue = queue or AudioWorkQueue(1, 8)

    @api.post("/v1/audio/transcriptions")
    async def transcriptions(request: Request) -> Response:
        if transcriber is None:
            refusal = openai_error(501, "this server's pipeline config has no stt stage, so it does not transcribe;"
                                        " add `- type: stt` to the pipeline", code="stt_not_configured")
            refusal.headers["x-should-retry"] = "false"  # the openai SDK retries a 5xx unless told not to
            return refusal
        try:  # admitted first: decoding and a model's first load are the work the queue bounds too
            ticket = queue.admit()
        except QueueFull as exc:
            return openai_error(429, str(exc), code="server_busy", retry_after=1)
        try:
            data, options, fmt, granularities, stream = await _parse(request, transcriber)
            audio = await _decode(data)
        except BaseException as exc:
            ticket.release()
            if isinstance(exc, TranscriptionError):
                return exc.response()
            raise
        if stream:
            return StreamingResponse(_stream(transcriber, audio, options, ticket), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"}, background=BackgroundTask(ticket.release))
        try:
            transcript = await transcriber.transcribe(audio, options, ticket)
        except Exception as exc:
            logger.exception("transcription failed")
            return openai_error(500, f"transcription failed: {exc}", code="transcription_failed")
        return _render(transcript, fmt, granularities)

    return api
