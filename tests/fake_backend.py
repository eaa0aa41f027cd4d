"""A test double of an OpenAI-compatible LLM server that misbehaves on request.

Served on loopback by the router tests. The first path segment picks the behaviour:
``/ok/v1``, ``/e500/v1``, ``/e429/v1``, ``/e400/v1``, ``/stall/v1`` (no first token for
30 s), ``/drop/v1`` (streams part of a reply, then cuts the connection). Any other first
segment behaves like ``ok`` and names itself in the reply (to tell replicas apart).
"""

from __future__ import annotations

import asyncio
import json
import time

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

PARTIAL = ["Once", " upon", " a", " time"]
FULL = [*PARTIAL, ",", " there", " was", " a", " fox", "."]

app = FastAPI()
calls: list[dict] = []


def _chunk(text: str | None, finish: str | None = None, usage: dict | None = None) -> bytes:
    body = {"id": "fake", "object": "chat.completion.chunk", "created": int(time.time()), "model": "fake",
            "choices": [] if usage else [{"index": 0, "delta": {"content": text} if text else {},
                                          "finish_reason": finish}]}
    if usage:
        body["usage"] = usage
    return f"data: {json.dumps(body)}\n\n".encode()


@app.post("/{mode}/v1/chat/completions")
async def chat(mode: str, request: Request):
    body = await request.json()
    calls.append({"mode": mode, **body})
    if mode == "e500":
        return JSONResponse({"error": {"message": "backend exploded"}}, status_code=500)
    if mode == "e429":
        return JSONResponse({"error": {"message": "slow down"}}, status_code=429)
    if mode == "e400":
        return JSONResponse({"error": {"message": "bad field"}}, status_code=400)
    words = FULL if mode in ("ok", "stall", "drop") else [f"replica {mode} says hi."]

    async def stream():
        if mode == "stall":
            await asyncio.sleep(30)
        for i, word in enumerate(words):
            if mode == "drop" and i == len(PARTIAL):
                raise ConnectionResetError("the backend died mid-reply")
            yield _chunk(word)
            await asyncio.sleep(0.01)
        yield _chunk(None, finish="stop")
        yield _chunk(None, usage={"prompt_tokens": 20, "completion_tokens": len(words), "total_tokens": 20 + len(words),
                                  "prompt_tokens_details": {"cached_tokens": 16}})
        yield b"data: [DONE]\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream")
