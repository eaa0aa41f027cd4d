"""The router over HTTP: OpenAI-compatible chat completions, the model list, metrics."""

from __future__ import annotations

import json
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from openai.types.chat import ChatCompletionChunk
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from cadence.router.router import Router, RouterError
from cadence.router.tool_calls import ToolCallMerger
from cadence.router.vllm import refresh_vllm_metrics


def openai_error(status: int, message: str, *, param: str | None = None, code: str | None = None,
                 extra: dict[str, Any] | None = None, retry_after: float | None = None) -> JSONResponse:
    """An error in the shape OpenAI clients parse: ``{"error": {message, type, param, code}}``;
    a 429 carries ``Retry-After`` (whole seconds, rounded up) when one is known."""
    kind = "invalid_request_error" if status < 500 else "api_error"
    if status == 429:
        kind, code = "rate_limit_error", code or "rate_limit_exceeded"
    body = {"error": {"message": message, "type": kind, "param": param, "code": code, **(extra or {})}}
    headers = {"Retry-After": str(math.ceil(retry_after))} if retry_after is not None else None
    return JSONResponse(body, status_code=status, headers=headers)


def router_routes(router: Router, shape: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]] | None = None
                  ) -> APIRouter:
    """FastAPI routes: POST /v1/chat/completions, GET /v1/models, GET /metrics.

    ``shape`` rewrites a request before it is routed (the server's memory hook: the router
    itself knows nothing about users' memory)."""
    api = APIRouter()

    @api.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return openai_error(400, "the request body must be JSON", code="invalid_json")
        if not isinstance(body, dict):
            return openai_error(400, "the request body must be a JSON object", code="invalid_json")
        try:
            if shape is not None:
                body = await shape(body)
            chunks = router.stream(body).__aiter__()
            first = await chunks.__anext__()  # fail with a proper status before any byte is sent
        except RouterError as exc:
            attempts = {"attempts": [a.public() for a in exc.attempts]} if exc.attempts else None
            return openai_error(exc.status, str(exc), param=exc.param, extra=attempts, retry_after=exc.retry_after)
        if body.get("stream"):
            return StreamingResponse(_sse(first, chunks), media_type="text/event-stream")
        try:
            return JSONResponse(await _collect(first, chunks))
        except RouterError as exc:  # broke after the first chunk with nowhere left to go
            return openai_error(exc.status if exc.status >= 500 else 503, str(exc), param=exc.param,
                                extra={"attempts": [a.public() for a in exc.attempts]})

    @api.get("/v1/models")
    async def models() -> dict[str, Any]:
        names = [*router.models()]
        for name, provider in router.section.providers.items():
            if provider.kind == "openai":
                names.append(f"{name}/*")
        names += [alias for alias in router.section.aliases if alias not in names]
        return {"object": "list", "data": [{"id": n, "object": "model", "created": 0, "owned_by": "cadence"} for n in names]}

    @api.get("/metrics")
    async def metrics() -> Response:
        await refresh_vllm_metrics(router)
        return Response(generate_latest(router.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return api


async def _sse(first: ChatCompletionChunk, rest: AsyncIterator[ChatCompletionChunk]) -> AsyncIterator[bytes]:
    yield f"data: {first.model_dump_json(exclude_none=True)}\n\n".encode()
    try:
        async for chunk in rest:
            yield f"data: {chunk.model_dump_json(exclude_none=True)}\n\n".encode()
    except RouterError as exc:  # headers are gone: report in-band, as OpenAI does
        kind = "rate_limit_error" if exc.status == 429 else "api_error"
        error = {"error": {"message": str(exc), "type": kind, "param": None, "code": None,
                           "attempts": [a.public() for a in exc.attempts]}}
        yield f"data: {json.dumps(error)}\n\n".encode()
    yield b"data: [DONE]\n\n"


async def _collect(first: ChatCompletionChunk, rest: AsyncIterator[ChatCompletionChunk]) -> dict[str, Any]:
    text, finish, usage, metadata, model = "", "stop", None, None, first.model
    calls = ToolCallMerger()
    async for chunk in _chain(first, rest):
        for choice in chunk.choices:
            text += choice.delta.content or ""
            calls.feed(choice.delta.tool_calls or [])
            finish = choice.finish_reason or finish
        if chunk.usage:
            usage = chunk.usage.model_dump(exclude_none=True)
        metadata = getattr(chunk, "metadata", None) or metadata
        model = chunk.model
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if found := calls.calls():
        message = {"role": "assistant", "content": text or None,
                   "tool_calls": [{k: v for k, v in c.wire(0).items() if k != "index"} for c in found]}
    return {
        "id": first.id, "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage, "metadata": metadata,
    }


async def _chain(first, rest):
    yield first
    async for chunk in rest:
        yield chunk
