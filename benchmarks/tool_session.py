"""A long tool-using Realtime session: N client tool round trips (call, function_call_output,
answer) and N server-run tool turns in one session, on the scripted backend double, then a
reconnect. Prints per-100-turn medians and the session's bounded structures (pending client
calls, remembered call ids, conversation items) and the process RSS, so growth shows.

    python benchmarks/tool_session.py --turns 200
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

WEATHER = {"type": "function", "name": "get_weather", "description": "Get the current weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


async def _until(conn, kind: str) -> list:
    events = []
    async for event in conn:
        events.append(event)
        if event.type == "error":
            raise RuntimeError(event.error.message)
        if event.type == kind:
            return events
    raise RuntimeError("closed")


async def main(turns: int) -> None:
    from openai import AsyncOpenAI

    import fake_backend
    from cadence.config import load_config_text, validate
    from cadence.models import ModelStore
    from cadence.pipelines.builder import PipelineFactory
    from cadence.server import create_app
    from servers import serving

    async with serving(fake_backend.app) as fake:
        config = {"router": {"providers": {"fake": {"kind": "openai", "base_url": f"{fake}/tools/v1"}}},
                  "tools": {"lookup": {"function": "tool_funcs:get_weather"}},
                  "pipeline": [{"type": "context"}, {"type": "llm", "model": "fake/m"}]}
        app = create_app(PipelineFactory(validate(load_config_text(json.dumps(config))), ModelStore()))
        async with serving(app) as base:
            client = AsyncOpenAI(api_key="unused", websocket_base_url=base.replace("http://", "ws://") + "/v1")
            for connection in range(2):  # the second: a reconnect after the long one
                async with client.realtime.connect(model="fake/m") as conn:
                    await _until(conn, "session.created")
                    times = []
                    for turn in range(turns if connection == 0 else 5):
                        started = time.perf_counter()
                        await conn.conversation.item.create(item={"type": "message", "role": "user", "content": [
                            {"type": "input_text", "text": f"What's the weather in City{turn}?"}]})
                        await conn.response.create()
                        await _until(conn, "response.done")  # the server-run tool's call
                        await _until(conn, "response.done")  # the answer to its result
                        times.append(time.perf_counter() - started)
                        if (turn + 1) % 100 == 0 or (connection == 1 and turn == 4):
                            (session,) = app.state.realtime_sessions
                            print(json.dumps({
                                "connection": connection, "turns": turn + 1,
                                "median_turn_ms": round(statistics.median(times[-100:]) * 1000),
                                "items": len(session.conversation.items),
                                "context_messages": len(session.pipeline.roles.llm_context.get_messages()),
                                "pending_client_calls": len(session.tools._pending),
                                "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=200)
    asyncio.run(main(parser.parse_args().turns))
