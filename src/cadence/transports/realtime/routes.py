"""WebSocket routes serving the Realtime protocol: OpenAI's path and Inworld's."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
from loguru import logger

from cadence.pipelines.builder import PipelineFactory
from cadence.transports.realtime.admission import Admission, Slot, presented_key
from cadence.transports.realtime.session import RealtimeSession


def realtime_routes(factory: PipelineFactory, authorized, sessions: set[RealtimeSession],
                    admission: Admission) -> APIRouter:
    """``/v1/realtime?model=M`` and ``/api/v1/realtime/session?key=ID&protocol=realtime``.

    ``authorized(headers, query)`` decides before the upgrade; a refusal is HTTP 401. Past
    ``admission``'s limits the upgrade is refused with HTTP 503 and ``Retry-After``.
    Live sessions are kept in ``sessions`` while they run.
    """
    api = APIRouter()

    async def serve(websocket: WebSocket, model: str | None, user_id: str | None) -> None:
        if not authorized(websocket.headers, websocket.query_params):
            await websocket.send_denial_response(JSONResponse(
                {"error": {"type": "invalid_request_error", "code": "invalid_api_key",
                           "message": "missing or wrong API key (Authorization: Bearer <key> or Basic <key>)"}},
                status_code=401))
            return
        slot = admission.reserve(presented_key(websocket.headers))
        if not isinstance(slot, Slot):
            await websocket.send_denial_response(slot)
            return
        try:
            offered = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",")]
            await websocket.accept(subprotocol="realtime" if "realtime" in offered else None)
            session = RealtimeSession(factory, websocket.send_json, model=model, user_id=user_id,
                                      close=lambda code, reason: websocket.close(code, reason))
        except Exception as exc:  # the session could not be built: the client is told, not dropped
            slot.release()
            logger.exception(f"realtime session could not start: {exc}")
            await _fail(websocket, exc)
            return
        except BaseException:
            slot.release()
            raise
        sessions.add(session)
        failed: Exception | None = None
        try:
            await session.start()
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                await session.handle(message.get("text") if message.get("text") is not None else message.get("bytes"))
        except WebSocketDisconnect:
            pass
        except Exception as exc:  # a bug must end this session only, never the server
            logger.exception(f"realtime session failed: {exc}")
            failed = exc
        finally:
            sessions.discard(session)
            try:
                await session.close()
            except Exception as exc:  # noqa: BLE001 - the client still hears of the failure below
                logger.exception(f"realtime session did not close cleanly: {exc}")
                failed = failed or exc
            finally:
                slot.release()
        if failed is not None:
            await _fail(websocket, failed)

    @api.websocket("/v1/realtime")
    async def openai_path(websocket: WebSocket) -> None:
        await serve(websocket, websocket.query_params.get("model"), websocket.query_params.get("user"))

    @api.websocket("/api/v1/realtime/session")
    async def inworld_path(websocket: WebSocket) -> None:
        # ``key`` is Inworld's session id, not a user: memory follows ``user``, as on OpenAI's path
        # (a key per session would file every session under a user of its own).
        await serve(websocket, websocket.query_params.get("model"), websocket.query_params.get("user"))

    return api


async def _fail(websocket: WebSocket, exc: Exception) -> None:
    """An ``error`` event saying the session failed, then close 1011 (a dropped connection
    would leave the client guessing)."""
    try:
        await websocket.send_json({"type": "error", "error": {
            "type": "server_error", "code": "session_failed", "param": None,
            "message": f"the session failed on the server: {type(exc).__name__}; see the server log"}})
        await websocket.close(1011, "session failed")
    except Exception:  # noqa: BLE001 - the connection is gone already
        pass
