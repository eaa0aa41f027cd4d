"""One ASGI app per process: Realtime sessions, the router's OpenAI-compatible API,
/metrics and /healthz, all sharing the process's models."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from pathlib import Path

from fastapi import FastAPI, Request
from loguru import logger
from fastapi.responses import HTMLResponse, JSONResponse

from cadence.api.memory import memory_routes
from cadence.api.limits import AudioWorkQueue
from cadence.api.speech import build_speech_service, speech_routes
from cadence.api.transcription import WhisperTranscriber, transcription_routes
from cadence.api.voices import voice_routes
from cadence.pipelines.builder import PipelineFactory
from cadence.router.http import openai_error, router_routes
from cadence.transports.realtime.admission import Admission, presented_key
from cadence.transports.realtime.routes import realtime_routes
from cadence.voice.catalog import pipeline_catalog
from cadence.transports.realtime.webrtc import close_webrtc_sessions, webrtc_routes

OPEN_PATHS = {"/healthz", "/readyz", "/"}
WS_MAX_SIZE = 6 * 1024 * 1024  # frames past this close the socket; up to it, past 4 MiB, an error says why
WS_MAX_QUEUE = 4  # messages a connection buffers before TCP holds the client back (uvicorn's default: 32)
WS_PROTOCOL = "websockets"  # uvicorn's WebSocket protocol (see cli.py: the default one hangs on bad headers)
PAGE = Path(__file__).parent / "web" / "index.html"


def create_app(factory: PipelineFactory) -> FastAPI:
    """The app serving ``factory``'s config; keys from ``server.api_keys`` guard every route but /healthz."""
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        try:  # the drain deadline holds: what has not ended by then is left behind
            await asyncio.wait_for(close_webrtc_sessions(), 3)
            await asyncio.wait_for(factory.memory.close(), 2)
        except TimeoutError:
            logger.warning("shutdown: sessions or the memory store did not close within 5 s")

    app = FastAPI(title="Cadence", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.realtime_sessions = sessions = set()
    server = factory.config.config.server
    app.state.admission = admission = Admission(server.max_sessions, server.max_sessions_per_key)
    keys = [k.get_secret_value() for k in factory.config.config.server.api_keys if k.get_secret_value()]

    @app.middleware("http")
    async def require_key(request: Request, call_next):
        if keys and request.url.path not in OPEN_PATHS and not _authorized(request.headers, keys):
            return openai_error(401, "missing or wrong API key (send Authorization: Bearer <key>)",
                                code="invalid_api_key")
        return await call_next(request)

    @app.get("/", response_class=HTMLResponse)
    async def page() -> HTMLResponse:
        return HTMLResponse(PAGE.read_text(encoding="utf-8"))

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        transport = factory.config.config.transport
        return JSONResponse({"status": "ok", "models": factory.router.models(),
                             "transports": [k for k in ("websocket", "webrtc") if transport.serves(k)],
                             **admission.load(), "cooling_down": factory.router.health.cooling(),
                             "asyncio_tasks": len(asyncio.all_tasks())})  # flat over churn, or a leak

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        """For a load balancer: 200 while new sessions are admitted, 503 when full."""
        return JSONResponse({"ready": not admission.full, **admission.load()}, status_code=503 if admission.full else 200)

    memory = factory.config.config.memory
    app.include_router(router_routes(factory.router, factory.memory.shape_chat if memory.router_api else None))
    app.include_router(memory_routes(factory.memory))
    app.include_router(voice_routes(pipeline_catalog(factory.config.params_of("tts"), factory.config.config.voices)))
    audio_queue = lambda: AudioWorkQueue(server.rest_audio_concurrency, server.rest_audio_queue)  # noqa: E731
    app.include_router(transcription_routes(WhisperTranscriber.of(factory), audio_queue()))
    app.include_router(speech_routes(build_speech_service(factory), audio_queue()))
    authorized = lambda headers, query: not keys or _authorized(headers, keys)  # noqa: E731
    transport = factory.config.config.transport
    if transport.serves("websocket"):
        app.include_router(realtime_routes(factory, authorized, sessions, admission))
    if transport.serves("webrtc"):
        app.include_router(webrtc_routes(factory, authorized, sessions, admission))
    _allow_cors(app, factory.config.config.server.cors_origins)
    return app


def _allow_cors(app: FastAPI, origins: list[str]) -> None:
    """server.cors_origins: pages from those origins may call every HTTP route (none: no CORS headers).

    Added last, so it wraps the key check: a preflight (which carries no Authorization) is answered
    before it, and a refusal of the real request still carries the headers the page needs to read it.
    No credentials mode: keys travel in Authorization, which a page sets itself; no cookies are used.
    Any method (the routes still answer 405 to one they do not serve) and any request header (SDKs
    send their own, e.g. OpenAI-Beta, X-Stainless-*) pass the preflight."""
    if not origins:
        return
    from starlette.middleware.cors import CORSMiddleware

    app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["*"], allow_headers=["*"],
                       allow_credentials=False, max_age=600,
                       expose_headers=["Retry-After"])  # not CORS-safelisted: a page must be let read it


def _authorized(headers, keys: list[str]) -> bool:
    token = presented_key(headers)
    return token is not None and _matches(token, keys)


def _matches(token: str, keys: list[str]) -> bool:
    # compare_digest refuses str with non-ASCII characters (TypeError → HTTP 500): compare bytes.
    # Header values arrive decoded as latin-1 (its bytes back); a client sends a key as UTF-8.
    given = token.encode("latin-1", "replace")
    return any(hmac.compare_digest(given, key.encode("utf-8")) for key in keys)


def check_bind(host: str, has_keys: bool) -> None:
    """Refuse to serve beyond loopback without a key."""
    from cadence.errors import ConfigError

    if host not in ("127.0.0.1", "localhost", "::1") and not host.startswith("127.") and not has_keys:
        raise ConfigError(
            f"refusing to listen on {host} with no API key: anyone on the network could use it."
            " Set server.api_keys (e.g. [\"${CADENCE_API_KEY}\"]) or bind 127.0.0.1"
        )
