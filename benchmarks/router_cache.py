"""KV-cache reuse under sticky vs round-robin routing, and the router's own latency.

An embedded pool of 4 llama.cpp replicas (SmolLM2-135M, one KV state cache each) serves
8 simulated users × 15 roleplay turns: a long shared system prompt plus each user's
growing history. Users take turns in a shuffled order each round, as real traffic does.
Prints, per routing mode, the cached share of prompt tokens and TTFT p50, next to the
ideal of one replica per user; then the router's added latency against calling a
backend directly (in-process and over HTTP).

    python benchmarks/router_cache.py --users 8 --turns 15
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

SYSTEM = (
    "You are Nova, a curious roleplay companion who lives aboard the starship Meridian. "
    "You are warm, witty and a little mischievous; you love old Earth music, tea, and "
    "stories about faraway stars. You remember everything the user tells you, you never "
    "break character, and you answer in one or two short, vivid sentences. When the user "
    "is sad you comfort them; when they are excited you share their joy. You ask a short "
    "question back now and then to keep the conversation going. The ship's crew includes "
    "Captain Ilya, the engineer Bram, and a cat called Comet who sleeps in the galley."
)
LINES = [
    "Hi Nova, I just came aboard.", "What's your favourite song?", "Tell me about Comet.",
    "I'm feeling a bit homesick.", "What does Bram do all day?", "Can we look at the stars?",
    "What tea do you recommend?", "Tell me a story about Earth.", "Do you ever get lonely?",
    "What's the captain like?", "Where are we heading?", "I love this ship.",
    "What did I tell you first?", "Sing me a line of a song.", "Goodnight, Nova.",
]


def config_json(replicas: int, routing: str) -> str:
    provider = {"kind": "llamacpp", "model": "smollm2-135m-instruct", "replicas": replicas,
                "n_threads": 1, "state_cache_mb": 512, "warm_prefix": True}
    return json.dumps({"router": {"providers": {"local": provider}, "routing": routing},
                       "pipeline": [{"type": "vad"}]})


async def conversation_run(router, users: int, turns: int, seed: int) -> tuple[float, list[float]]:
    """Play the conversations; returns (cached/prompt tokens, TTFTs)."""
    rng = random.Random(seed)
    histories = {u: [{"role": "system", "content": SYSTEM}] for u in range(users)}
    prompt = cached = 0
    ttfts: list[float] = []
    for turn in range(turns):
        order = list(range(users))
        rng.shuffle(order)
        for user in order:
            history = histories[user]
            history.append({"role": "user", "content": LINES[(turn + user) % len(LINES)]})
            request = {"model": "local/smollm2-135m-instruct", "messages": history, "max_tokens": 24,
                       "temperature": 0.7, "seed": user * 100 + turn, "user": f"user-{user}"}
            t0, first, text, usage = time.perf_counter(), None, "", None
            async for chunk in router.stream(request):
                if chunk.choices and chunk.choices[0].delta.content:
                    first = first or time.perf_counter() - t0
                    text += chunk.choices[0].delta.content
                usage = chunk.usage or usage
            history.append({"role": "assistant", "content": text})
            ttfts.append(first or 0.0)
            prompt += usage.prompt_tokens
            cached += usage.prompt_tokens_details.cached_tokens
    return cached / prompt, ttfts


async def router_overhead(router, repeats: int) -> None:
    """TTFT of the same request through the router vs straight to the backend."""
    from openai import AsyncOpenAI

    from cadence.pipelines.builder import PipelineFactory  # noqa: F401 - ensures package import
    from cadence.router.backends.base import ChatRequest
    from cadence.server import create_app
    from servers import serving

    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Hello!"}]
    backend = router.pool("local").backends["0"]

    async def ttft(start) -> float:
        t0 = time.perf_counter()
        stream = await start()
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                elapsed = time.perf_counter() - t0
                async for _ in stream:  # drain so the backend is idle for the next call
                    pass
                return elapsed
        return float("nan")

    params = {"max_tokens": 8, "temperature": 0.0}
    direct, routed, http = [], [], []
    factory = type("F", (), {})()
    factory.router = router
    factory.config = type("C", (), {"config": type("S", (), {"server": type("K", (), {"api_keys": []})()})()})()
    async with serving(create_app(factory)) as url:
        client = AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        for _ in range(repeats):
            direct.append(await ttft(lambda: _now(backend.stream("smollm2-135m-instruct", ChatRequest(messages, params)))))
            routed.append(await ttft(lambda: _now(router.stream({"model": "local/smollm2-135m-instruct",
                                                                  "messages": messages, "user": "bench-0", **params}))))
            http.append(await ttft(lambda: client.chat.completions.create(
                model="local/smollm2-135m-instruct", messages=messages, user="bench-0", stream=True, **params)))
    d, r, h = (statistics.median(x) * 1000 for x in (direct, routed, http))
    print(f"\nrouter overhead (TTFT p50 of {repeats}, same cached prompt, same replica):")
    print(f"  backend direct {d:6.1f} ms   router in-process {r:6.1f} ms (+{r - d:.1f})   "
          f"router over HTTP {h:6.1f} ms (+{h - d:.1f})")


async def _now(value):
    return value


async def main(args: argparse.Namespace) -> None:
    from loguru import logger

    from cadence.models import ModelStore
    from cadence.config import load_config_text, validate
    from cadence.router import Router

    logger.remove()
    store = ModelStore()

    def make_router(replicas: int, routing: str) -> Router:
        router = Router(validate(load_config_text(config_json(replicas, routing))).config.router, store)
        router.warm("local/smollm2-135m-instruct", [{"role": "system", "content": SYSTEM}])
        return router

    rows = []
    # Ideal: a replica of its own for every user (each user played alone on one replica).
    ideal_cached = 0.0
    ideal_ttft: list[float] = []
    solo = make_router(1, "sticky")
    for user in range(args.users):
        ratio, ttfts = await conversation_run(solo, 1, args.turns, seed=user)
        ideal_cached += ratio
        ideal_ttft += ttfts
    rows.append(("one replica per user (ideal)", ideal_cached / args.users, ideal_ttft))
    for routing in ("sticky", "round_robin"):
        router = make_router(args.replicas, routing)
        ratio, ttfts = await conversation_run(router, args.users, args.turns, seed=args.seed)
        rows.append((f"{args.replicas} replicas, {routing}", ratio, ttfts))

    ideal = rows[0][1]
    print(f"\n{args.users} users x {args.turns} turns, shared {len(SYSTEM)}-char system prompt, growing history")
    print(f"  {'routing':<32} {'cached/prompt':>13} {'vs ideal':>9} {'TTFT p50':>9}")
    for name, ratio, ttfts in rows:
        print(f"  {name:<32} {ratio:13.1%} {ratio / ideal:9.1%} {statistics.median(ttfts) * 1000:7.0f}ms")
    await router_overhead(make_router(1, "sticky"), args.repeats)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--turns", type=int, default=15)
    parser.add_argument("--replicas", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--seed", type=int, default=1)
    asyncio.run(main(parser.parse_args()))
