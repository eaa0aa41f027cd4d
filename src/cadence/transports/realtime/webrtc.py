"""The Realtime protocol over WebRTC, in OpenAI's shape: POST an SDP offer, get the answer.

The client's microphone arrives on its audio track and the reply goes back on the server's
track (pipecat's SmallWebRTC transport, on aiortc); the protocol's events travel as JSON
on the client's data channel (OpenAI names it ``oai-events``) and are handled by the same
``RealtimeSession`` as over WebSocket, minus the audio-in-events parts.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from loguru import logger

from cadence.pipelines.builder import PipelineFactory
from cadence.transports.realtime.admission import Admission, Slot, presented_key
from cadence.transports.realtime.session import Media, RealtimeSession

MAX_OFFER_BYTES = 64 * 1024  # a browser's offer is 2-10 KB; the body is read no further than this
CONNECT_TIMEOUT_S = 20.0  # an answered offer whose peer never connects gives its slot back after this
_sessions: set[asyncio.Task] = set()


async def _connects(connected: asyncio.Event, closed: asyncio.Event) -> bool:
    """Whether the peer connects within ``CONNECT_TIMEOUT_S`` (and has not hung up already)."""
    waits = [asyncio.ensure_future(connected.wait()), asyncio.ensure_future(closed.wait())]
    await asyncio.wait(waits, timeout=CONNECT_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED)
    for wait in waits:
        wait.cancel()
    if not connected.is_set() and not closed.is_set():
        logger.warning(f"webrtc: the peer never connected within {CONNECT_TIMEOUT_S:g} s of its offer; call ended")
    return connected.is_set() and not closed.is_set()


async def close_webrtc_sessions() -> None:
    """End every WebRTC session (at server shutdown: peers that vanished never say goodbye)."""
    for task in list(_sessions):
        task.cancel()
    await asyncio.gather(*_sessions, return_exceptions=True)


def webrtc_routes(factory: PipelineFactory, authorized, sessions: set[RealtimeSession],
                  admission: Admission) -> APIRouter:
    """``POST /v1/realtime/calls`` (GA) and ``POST /v1/realtime`` (beta): SDP offer in, answer out.

    Live sessions are kept in ``sessions`` while they run; past ``admission``'s limits an
    offer gets HTTP 503 with ``Retry-After``."""
    from pipecat.transports.base_transport import TransportParams
    from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection
    from pipecat.transports.smallwebrtc.transport import SmallWebRTCTransport

    api = APIRouter()
    transport_config = factory.config.config.transport

    async def call(request: Request) -> Response:
        if not authorized(request.headers, request.query_params):
            return JSONResponse({"error": {"type": "invalid_request_error", "code": "invalid_api_key",
                                           "message": "missing or wrong API key"}}, status_code=401)
        raw = bytearray()
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_OFFER_BYTES:  # an SDP offer is a few KB: a larger body is not one
                return JSONResponse({"error": {"type": "invalid_request_error", "code": "offer_too_large", "param": "sdp",
                                               "message": f"an SDP offer is at most {MAX_OFFER_BYTES} bytes"}},
                                    status_code=413)
        body = raw.decode("utf-8", "replace")
        if "json" in request.headers.get("content-type", ""):
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
            body = parsed.get("sdp") if isinstance(parsed, dict) else None
        if not isinstance(body, str) or not body.startswith("v=0"):
            return JSONResponse({"error": {"type": "invalid_request_error", "code": "invalid_sdp", "param": "sdp",
                                           "message": "the body must be an SDP offer (Content-Type: application/sdp)"}},
                                status_code=400)
        slot = admission.reserve(presented_key(request.headers))
        if not isinstance(slot, Slot):
            return slot
        try:  # until the session runs, a failure gives its slot back
            connection = SmallWebRTCConnection(ice_servers=[])
            await connection.initialize(sdp=body, type="offer")
            answer = connection.get_answer()
            transport = SmallWebRTCTransport(webrtc_connection=connection, params=TransportParams(
                audio_in_enabled=True, audio_in_sample_rate=transport_config.audio_in_sample_rate,
                audio_out_enabled=True, audio_out_sample_rate=transport_config.audio_out_sample_rate,
            ))

            async def send(event: dict[str, Any]) -> None:
                connection.send_app_message(event)

            session = RealtimeSession(
                factory, send, model=request.query_params.get("model"), user_id=request.query_params.get("user"),
                media=Media(transport.input(), transport.output(), audio_over_events=False),
                close=lambda code, reason: hang_up(),
            )
        except BaseException:
            slot.release()
            raise
        closed, connected = asyncio.Event(), asyncio.Event()

        async def hang_up() -> None:  # the session gave up on the data channel: end the call too
            closed.set()

        @transport.event_handler("on_app_message")
        async def on_app_message(transport, message, sender):
            await session.handle(json.dumps(message))

        @transport.event_handler("on_client_connected")
        async def on_client_connected(transport, connection):
            connected.set()

        @transport.event_handler("on_client_disconnected")
        async def on_client_disconnected(transport, connection):
            closed.set()

        async def run() -> None:
            sessions.add(session)
            try:
                await session.start()
                if await _connects(connected, closed):
                    await closed.wait()
            except Exception as exc:  # one call failing must not take the server down
                logger.exception(f"webrtc session failed: {exc}")
            finally:
                sessions.discard(session)
                try:
                    await session.close()
                finally:
                    slot.release()

        task = asyncio.create_task(run())
        _sessions.add(task)
        task.add_done_callback(_sessions.discard)
        return Response(answer["sdp"], media_type="application/sdp", status_code=201)

    api.add_api_route("/v1/realtime/calls", call, methods=["POST"])
    api.add_api_route("/v1/realtime", call, methods=["POST"])
    return api
