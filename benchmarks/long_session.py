"""One long session through the real pipeline and embedded model, measured per window of turns.

    python benchmarks/long_session.py --turns 600            # text turns on configs/nova.yaml
    python benchmarks/long_session.py --turns 200 --window 50

Prints, per window of turns: the largest prompt (tokens) against the model's window, the
share of prompt tokens served from the KV cache, TTFT p50/p99, summaries made and their
time, and RSS; then whether the facts planted in the first turns are still in the prompt
and how many of the questions about them the model answers.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FACTS = [  # (told in the first turns, asked at the end, words a right answer contains)
    ("My name is Ines.", "What is my name?", ("ines",)),
    ("I have a grey cat called Pixel.", "What is my cat called?", ("pixel",)),
    ("My brother Tiago plays the cello.", "What instrument does my brother play?", ("cello",)),
    ("My favourite food is grilled sardines.", "What is my favourite food?", ("sardine",)),
    ("Next month I am going hiking in the Alps.", "Where am I going hiking?", ("alps",)),
]
CHATTER = [
    "Tell me something nice.", "What do you think about the sea?", "I had a busy day.", "Do you like music?",
    "What is a good book to read?", "The weather is grey today.", "What should I cook tonight?",
    "Tell me a fun fact.", "I am a bit tired.", "What makes you curious?", "Any idea for the weekend?",
    "I saw a fox in the park.",
]


def rss_mb() -> float:
    """Resident memory now (not the peak)."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize() / 2**20


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


async def main(args: argparse.Namespace) -> None:
    from loguru import logger

    from cadence.config import load_and_validate
    from cadence.pipelines.builder import PipelineFactory
    from cadence.transports.file import FileConversation

    logger.remove()
    logger.add(sys.stderr, level="ERROR")
    from cadence.memory.service import MemoryService

    config = load_and_validate(args.config)
    factory = PipelineFactory(config)
    store = args.store or f"sqlite:///{tempfile.mkdtemp(prefix='cadence-long-')}/memory.db"
    factory.memory = MemoryService(config.config.memory.model_copy(update={"store": store, "resume_window_s": 0}),
                                   factory.router)
    factory.prepare()
    llm = config.params_of("llm")
    router, model = factory.router, llm.model
    requests: list[dict] = []
    real_stream = router.stream

    def measured(params):
        messages = params.get("messages") or [{}]
        record = {"t0": time.monotonic(), "ttft": None, "prompt": 0, "cached": 0, "summary": params.get(
            "max_tokens") != llm.max_tokens, "system": " ".join(str(m.get("content")) for m in messages
                                                                 if m.get("role") == "system")}
        requests.append(record)

        async def chunks():
            async for chunk in real_stream(params):
                if record["ttft"] is None and chunk.choices and chunk.choices[0].delta.content:
                    record["ttft"] = time.monotonic() - record["t0"]
                if chunk.usage:
                    record["prompt"] = chunk.usage.prompt_tokens
                    details = chunk.usage.prompt_tokens_details
                    record["cached"] = (details.cached_tokens or 0) if details else 0
                yield chunk

        return chunks()

    router.stream = measured
    built = []
    real_build = factory.build
    factory.build = lambda *a, **k: built.append(real_build(*a, **k)) or built[-1]

    lines = [fact for fact, _, _ in FACTS]
    lines += [CHATTER[i % len(CHATTER)] for i in range(args.turns - len(FACTS) * 2)]
    lines += [question for _, question, _ in FACTS]
    window_tokens = router.context_window(model)
    exchanges = []
    rss_at: dict[int, float] = {}

    def on_exchange(exchange) -> None:
        exchanges.append(exchange)
        rss_at[len(exchanges)] = rss_mb()

    result = await FileConversation(factory, pace=0, reply_timeout=120, on_exchange=on_exchange,
                                    user=args.user).run_text(lines)
    replies = [r for r in requests if not r["summary"]]
    summaries = [r for r in requests if r["summary"]]
    print(f"long session: {args.config}, {len(lines)} text turns, window {window_tokens} tokens,"
          f" replies of up to {llm.max_tokens}")
    print(f"{'turns':>9} {'prompt max':>10} {'cached':>7} {'TTFT p50':>9} {'p99':>7} {'summaries':>9} {'RSS MB':>7}")
    for start in range(0, len(replies), args.window):
        chunk = replies[start:start + args.window]
        prompt = sum(r["prompt"] for r in chunk)
        ttfts = [r["ttft"] for r in chunk if r["ttft"] is not None]
        ended = chunk[-1]["t0"]
        made = [s for s in summaries if s["t0"] <= ended and (start == 0 or s["t0"] > replies[start - 1]["t0"])]
        print(f"{start + 1:>4}-{start + len(chunk):<4} {max(r['prompt'] for r in chunk):>10}"
              f" {sum(r['cached'] for r in chunk) / max(1, prompt):>7.1%}"
              f" {statistics.median(ttfts) * 1000 if ttfts else float('nan'):>7.0f}ms"
              f" {percentile(ttfts, 0.99) * 1000:>5.0f}ms {len(made):>9} {rss_at.get(start + len(chunk), 0):>7.0f}")
    total_prompt = sum(r["prompt"] for r in replies)
    answered = sum(1 for e in result.exchanges if e.reply.strip())
    print(f"answered {answered}/{len(lines)}; prompt never over the window: "
          f"{max(r['prompt'] for r in replies) <= window_tokens - llm.max_tokens};"
          f" cached share {sum(r['cached'] for r in replies) / max(1, total_prompt):.1%};"
          f" RSS growth from turn {args.window} to the end {rss_at[len(lines)] - rss_at[min(args.window, len(lines))]:.0f}"
          f" MB (the reply audio kept for --output: {len(result.audio) / 2**20:.0f} MB)")
    summary = built[0].roles.context_window.summary if built and built[0].roles.context_window else None
    if summary is not None:
        await summary.settled()
        times = [s["ttft"] for s in summaries if s["ttft"]]
        print(f"summaries: {summary.folds} made, {summary.failures} failed, last took"
              f" {summary.last_seconds or 0:.1f} s; summary now: {len(summary.text)} chars")
    recalled = 0
    for (_, question, words), exchange in zip(FACTS, result.exchanges[-len(FACTS):]):
        ok = any(w in exchange.reply.lower() for w in words)
        recalled += ok
        print(f"  {'✓' if ok else '✗'} {question} → {exchange.reply[:80]!r}")
    print(f"planted-fact recall: {recalled}/{len(FACTS)}")
    last_system = next(r for r in reversed(replies) if r.get("system"))["system"]
    kept = await factory.memory.describe(args.user)
    stored = " ".join(f["text"] for f in kept["facts"]).lower() if kept else ""
    print(f"planted facts in the last prompt: {sum(all(w in last_system.lower() for w in ws) for _, _, ws in FACTS)}"
          f"/{len(FACTS)}; in GET /v1/memory/{args.user}: {sum(all(w in stored for w in ws) for _, _, ws in FACTS)}"
          f"/{len(FACTS)} ({len(kept['facts']) if kept else 0} facts kept)")
    before = len(requests)
    await FileConversation(factory, pace=0, user=args.user).run_text(["Hello again!"])
    new_system = next(r["system"] for r in requests[before:] if not r["summary"])
    print(f"planted facts in a new session's prompt: "
          f"{sum(all(w in new_system.lower() for w in ws) for _, _, ws in FACTS)}/{len(FACTS)}")
    await factory.memory.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "configs" / "nova.yaml"))
    parser.add_argument("--turns", type=int, default=600)
    parser.add_argument("--window", type=int, default=100, help="turns per printed row")
    parser.add_argument("--user", default="long-session-bench", help="whose memory the session keeps")
    parser.add_argument("--store", help="memory store URL (default: a throwaway SQLite file)")
    asyncio.run(main(parser.parse_args()))
