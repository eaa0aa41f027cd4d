"""Cross-session recall: ten facts told among chit-chat in one session, ten questions about
them in a new session for the same user (past the resume window: only what memory kept).

    python benchmarks/recall.py                       # configs/nova.yaml, a throwaway store
    python benchmarks/recall.py --config configs/nova-tiny.yaml

Prints each question, the answer and whether it holds the fact, then the score, the facts
the store kept and the time per session.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FACTS = [  # (said in session 1, asked in session 2, words a right answer contains)
    ("Hi! My name is Priya.", "What is my name?", ("priya",)),
    ("I have a dog named Rex.", "What is my dog's name?", ("rex",)),
    ("My sister Maya lives in Lisbon.", "In which city does my sister live?", ("lisbon",)),
    ("My favorite food is ramen.", "What is my favorite food?", ("ramen",)),
    ("I work as a nurse.", "What is my job?", ("nurse",)),
    ("I play the cello.", "Which instrument do I play?", ("cello",)),
    ("I'm allergic to peanuts.", "What am I allergic to?", ("peanut",)),
    ("I live in Denver.", "Which city do I live in?", ("denver",)),
    ("I'm planning a trip to Japan in April.", "Which country am I planning a trip to?", ("japan",)),
    ("My birthday is on March 3rd.", "When is my birthday?", ("march",)),
]
CHATTER = ["How are you today?", "The weather is grey today.", "Tell me something nice.",
           "Do you like music?", "What should I cook tonight?", "I had a long day."]


async def main(args: argparse.Namespace) -> int:
    from loguru import logger

    from cadence.config import load_and_validate
    from cadence.memory.service import MemoryService
    from cadence.pipelines.builder import PipelineFactory
    from cadence.transports.file import FileConversation

    logger.remove()
    logger.add(sys.stderr, level="ERROR")
    config = load_and_validate(args.config)
    store = args.store or f"sqlite:///{tempfile.mkdtemp(prefix='cadence-recall-')}/memory.db"
    settings = config.config.memory.model_copy(update={"store": store, "resume_window_s": 0})
    factory = PipelineFactory(config)
    factory.memory = MemoryService(settings, factory.router)
    factory.prepare()

    told = []
    for index, (fact, _, _) in enumerate(FACTS):
        told += [fact, CHATTER[index % len(CHATTER)]]
    started = time.monotonic()
    await FileConversation(factory, pace=0, user=args.user).run_text(told)
    first = time.monotonic() - started
    started = time.monotonic()
    result = await FileConversation(factory, pace=0, user=args.user).run_text([q for _, q, _ in FACTS])
    second = time.monotonic() - started
    answers = [e for e in result.exchanges if e.user is not None]
    score = 0
    for (_, question, words), exchange in zip(FACTS, answers):
        ok = any(word in exchange.reply.lower() for word in words)
        score += ok
        print(f"  {'✓' if ok else '✗'} {question} → {exchange.reply.strip()[:90]!r}")
    kept = await factory.memory.describe(args.user)
    print(f"recall across sessions: {score}/{len(FACTS)} ({args.config}; session 1: {len(told)} turns in"
          f" {first:.0f} s, session 2: {len(FACTS)} questions in {second:.0f} s)")
    print(f"facts kept for {args.user!r}: {len(kept['facts']) if kept else 0}; summary: "
          f"{len(kept['summary']) if kept else 0} chars")
    await factory.memory.close()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "configs" / "nova.yaml"))
    parser.add_argument("--user", default="recall-bench")
    parser.add_argument("--store", help="memory store URL (default: a throwaway SQLite file)")
    sys.exit(asyncio.run(main(parser.parse_args())))
