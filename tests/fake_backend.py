"""A test double of an OpenAI-compatible LLM server that misbehaves on request.

Served on loopback by the router tests. The first path segment picks the behaviour:
``/ok/v1``, ``/e500/v1``, ``/e429/v1``, ``/e400/v1``, ``/stall/v1`` (no first token for
30 s), ``/slow/v1`` (the first token after 0.8 s), ``/slow2/v1`` (after 2 s), ``/drop/v1`` (streams part of a reply, then cuts the connection),
``/cut/v1`` (streams part of a reply, then ends the body cleanly: no finish_reason, no
``[DONE]``, as a proxy closing would), ``/e429ra/v1`` (429 with ``Retry-After: 7``), ``/tools/v1``
(a scripted tool caller: ``tool_reply``), ``/tools2/v1`` (the same, a call per city asked about), ``/tooldrop/v1`` (starts a tool call, then cuts the
connection mid-arguments). Any other first
segment behaves like ``ok`` and names itself in the reply (to tell replicas apart),
unless a test has put that segment in ``failing``: then it answers HTTP 500.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

PARTIAL = ["Once", " upon", " a", " time"]
FULL = [*PARTIAL, ",", " there", " was", " a", " fox", "."]
# ``/tags/v1``: a reply with steering tags split across tokens (the steering stage's test).
TAGGED = ["[say with qu", "iet intensity] I", " have missed you", ". [whis", "pering] Come", " closer", ". [si", "gh]",
          " It was a long", " day. [laugh", "ing] You always", " make me smile", "."]

app = FastAPI()
calls: list[dict] = []
failing: set[str] = set()  # first path segments that answer 500 for now (e.g. one replica of a fleet)


def _chunk(text: str | None, finish: str | None = None, usage: dict | None = None) -> bytes:
    body = {"id": "fake", "object": "chat.completion.chunk", "created": int(time.time()), "model": "fake",
            "choices": [] if usage else [{"index": 0, "delta": {"content": text} if text else {},
                                          "finish_reason": finish}]}
    if usage:
        body["usage"] = usage
    return f"data: {json.dumps(body)}\n\n".encode()


def tool_reply(body: dict, many: bool = False) -> tuple[list[str], list[dict]]:
    """The scripted tool caller: with tools offered, a question and no tool result yet, "Let me
    check." and a call of the first tool, each required string argument the user's last capitalised word
    ("weather in Paris?" → Paris; ``many``: one call per capitalised word after the first); after
    a tool result, a sentence that quotes it."""
    messages = body.get("messages") or []
    last = messages[-1] if messages else {}
    if last.get("role") == "tool":
        return [f"The tool says: {last.get('content')}", "."], []
    tools = [t["function"] for t in body.get("tools") or [] if t.get("type") == "function"]
    user = next((m for m in reversed(messages) if m.get("role") == "user"), {})
    content = user.get("content")
    text = content if isinstance(content, str) else " ".join(p.get("text", "") for p in content or [])
    if not tools or body.get("tool_choice") == "none" or "?" not in text:  # only a question calls a tool
        return ["No", " tools", " today", "."], []
    capitalised = [w.strip("?.!,'\"") for w in text.split() if w[:1].isupper()]
    required = tools[0].get("parameters", {}).get("required", [])
    words = capitalised[1:] if many and len(capitalised) > 2 else capitalised[-1:] or [""]
    return ["Let me check", "."], [{"name": tools[0]["name"], "arguments": json.dumps({n: w for n in required})}
                                   for w in words]


_CALL_IDS = itertools.count(1)  # every call an id of its own, as real backends give


def _tool_chunks(call: dict, index: int = 0, cut: bool = False) -> list[bytes]:
    """A call as OpenAI streams it: id and name first, the arguments in three pieces."""
    args = call["arguments"]
    pieces = [args[: len(args) // 3], args[len(args) // 3: 2 * len(args) // 3], args[2 * len(args) // 3:]]
    first = {"index": index, "id": f"call_fake{next(_CALL_IDS)}", "type": "function",
             "function": {"name": call["name"], "arguments": ""}}
    out = [_delta({"tool_calls": [first]})]
    out += [_delta({"tool_calls": [{"index": index, "function": {"arguments": p}}]}) for p in pieces[: 1 if cut else 3]]
    return out


def _delta(delta: dict, finish: str | None = None) -> bytes:
    body = {"id": "fake", "object": "chat.completion.chunk", "created": int(time.time()), "model": "fake",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(body)}\n\n".encode()


@app.post("/{mode}/v1/chat/completions")
async def chat(mode: str, request: Request):
    body = await request.json()
    calls.append({"mode": mode, **body})
    if mode in ("tools", "tools2", "tooldrop"):
        return StreamingResponse(_tool_stream(mode, body), media_type="text/event-stream")
    if mode == "e500" or mode in failing:
        return JSONResponse({"error": {"message": "backend exploded"}}, status_code=500)
    if mode == "e429":
        return JSONResponse({"error": {"message": "slow down"}}, status_code=429)
    if mode == "e429ra":
        return JSONResponse({"error": {"message": "rate limited"}}, status_code=429, headers={"Retry-After": "7"})
    if mode == "e400":
        return JSONResponse({"error": {"message": "bad field"}}, status_code=400)
    words = FULL if mode in ("ok", "stall", "slow", "slow2", "drop", "cut") else [f"replica {mode} says hi."]
    words = TAGGED if mode == "tags" else words

    async def stream():
        if mode in ("stall", "slow", "slow2"):
            await asyncio.sleep({"stall": 30, "slow": 0.8, "slow2": 2.0}[mode])
        for i, word in enumerate(words):
            if mode == "drop" and i == len(PARTIAL):
                raise ConnectionResetError("the backend died mid-reply")
            if mode == "cut" and i == len(PARTIAL):
                return  # the body ends cleanly here: no finish_reason, no usage, no [DONE]
            yield _chunk(word)
            await asyncio.sleep(0.01)
        yield _chunk(None, finish="stop")
        yield _chunk(None, usage={"prompt_tokens": 20, "completion_tokens": len(words), "total_tokens": 20 + len(words),
                                  "prompt_tokens_details": {"cached_tokens": 16}})
        yield b"data: [DONE]\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream")


async def _tool_stream(mode: str, body: dict):
    words, calls = tool_reply(body, many=mode == "tools2")
    for word in words:
        yield _chunk(word)
        await asyncio.sleep(0.01)
    for index, call in enumerate(calls):
        for piece in _tool_chunks(call, index, cut=mode == "tooldrop"):
            yield piece
            await asyncio.sleep(0.01)
        if mode == "tooldrop":
            raise ConnectionResetError("the backend died mid-call")
    yield _chunk(None, finish="tool_calls" if calls else "stop")
    yield _chunk(None, usage={"prompt_tokens": 30, "completion_tokens": 8, "total_tokens": 38})
    yield b"data: [DONE]\n\n"


# vLLM's V1 prefix-cache counters, in the shape vLLM documents (tokens; `_total` counters).
vllm_counters = {"queries": 1000.0, "hits": 400.0}


@app.get("/vllm/metrics")
async def vllm_metrics():
    from fastapi.responses import PlainTextResponse

    text = (
        "# HELP vllm:prefix_cache_queries_total Prefix cache queries, in terms of number of queried tokens.\n"
        "# TYPE vllm:prefix_cache_queries_total counter\n"
        f'vllm:prefix_cache_queries_total{{engine="0",model_name="m"}} {vllm_counters["queries"]}\n'
        "# HELP vllm:prefix_cache_hits_total Prefix cache hits, in terms of number of cached tokens.\n"
        "# TYPE vllm:prefix_cache_hits_total counter\n"
        f'vllm:prefix_cache_hits_total{{engine="0",model_name="m"}} {vllm_counters["hits"]}\n'
        "# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
        "# TYPE vllm:num_requests_running gauge\n"
        'vllm:num_requests_running{engine="0",model_name="m"} 1.0\n'
    )
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")
