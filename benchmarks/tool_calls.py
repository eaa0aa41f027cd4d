"""How reliably each embedded model calls tools: right tool, right arguments, valid JSON, and no
call where none is needed, over a varied set of prompts (through the router's llama.cpp
backend, its chat template's tools branch and the lenient reader of text calls).

    python benchmarks/tool_calls.py                      # every packaged chat model
    python benchmarks/tool_calls.py --models qwen2.5-coder-0.5b-instruct --runs 2

Prints one JSON line per model: the share of prompts with the right tool, with the right
arguments too, of calls written that could be read as JSON (the reader logs the others), of no-tool prompts answered without
a call, and the median seconds per prompt. Temperature 0: one run is what the model does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from cadence.models import resolve_model  # noqa: E402
from cadence.router.backends.base import ChatRequest  # noqa: E402
from cadence.router.backends.llamacpp import LlamaCppBackend  # noqa: E402


def _tool(name: str, description: str, **properties: str) -> dict:
    return {"type": "function", "function": {"name": name, "description": description, "parameters": {
        "type": "object", "properties": {k: {"type": v} for k, v in properties.items()},
        "required": list(properties)}}}


TOOLS = [
    _tool("get_weather", "Get the current weather for a city", city="string"),
    _tool("set_reminder", "Set a reminder for the user in some minutes", text="string", minutes="integer"),
    _tool("roll_dice", "Roll dice for a roleplay game", sides="integer", count="integer"),
]
# (prompt, expected tool or None, expected arguments: values compared loosely, case-insensitive)
CASES = [
    ("What's the weather in Paris?", "get_weather", {"city": "paris"}),
    ("Is it raining in Tokyo right now?", "get_weather", {"city": "tokyo"}),
    ("How cold is it in Oslo today?", "get_weather", {"city": "oslo"}),
    ("Should I take an umbrella in London?", "get_weather", {"city": "london"}),
    ("Remind me to call my mom in 10 minutes.", "set_reminder", {"minutes": 10}),
    ("Set a reminder to drink water in 30 minutes.", "set_reminder", {"minutes": 30}),
    ("In 5 minutes remind me to check the oven.", "set_reminder", {"minutes": 5}),
    ("Roll two six-sided dice for me.", "roll_dice", {"sides": 6, "count": 2}),
    ("Roll a d20!", "roll_dice", {"sides": 20, "count": 1}),
    ("I attack the goblin. Roll three 8-sided dice.", "roll_dice", {"sides": 8, "count": 3}),
    ("Could you check the forecast for Berlin?", "get_weather", {"city": "berlin"}),
    ("Do I need a coat in Chicago today?", "get_weather", {"city": "chicago"}),
    ("Ping me in 45 minutes to stretch.", "set_reminder", {"minutes": 45}),
    ("Hi! How are you today?", None, {}),
    ("I feel a bit lonely tonight.", None, {}),
    ("Tell me a short story about a dragon.", None, {}),
    ("Do you like music?", None, {}),
    ("Tell me something nice about cats.", None, {}),
    ("I had a long day at work.", None, {}),
    ("What's your favourite colour?", None, {}),
]
SYSTEM = "You are Nova, a friendly companion. Use a tool only when it helps; otherwise just talk."
MODELS = ["qwen2.5-coder-0.5b-instruct", "smollm2-135m-instruct"]


def _matches(expected: dict, got: dict) -> bool:
    for key, value in expected.items():
        actual = got.get(key)
        if isinstance(value, str):
            if not isinstance(actual, str) or value not in actual.lower():
                return False
        elif str(actual).strip() != str(value):
            return False
    return True


async def _ask(backend: LlamaCppBackend, prompt: str) -> tuple[list[tuple[str, str]], str]:
    request = ChatRequest([{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}],
                          {"tools": TOOLS, "temperature": 0, "max_tokens": 80})
    calls, text = [], ""
    async for chunk in backend.stream("m", request):
        for choice in chunk.choices:
            text += choice.delta.content or ""
            for call in choice.delta.tool_calls or []:
                if call.function is not None and call.function.name:
                    calls.append((call.function.name, call.function.arguments or ""))
    return calls, text


async def measure(model: str, runs: int) -> dict:
    from loguru import logger

    unreadable = []  # calls the reader dropped because they could not be parsed (it logs each)
    sink = logger.add(lambda m: unreadable.append(m) if "could not be read" in m else None, level="WARNING")
    backend = LlamaCppBackend(resolve_model(model, what="model"), model_name=model, n_ctx=2048)
    if not backend.takes_tools:
        backend.close()
        logger.remove(sink)
        return {"model": model, "takes_tools": False, "note": "its chat template has no tools branch: refused (400)"}
    right_tool = right_args = valid = calls_made = quiet = 0
    seconds = []
    tool_cases = [c for c in CASES if c[1]]
    for _ in range(runs):
        for prompt, tool, arguments in CASES:
            started = time.perf_counter()
            calls, _ = await _ask(backend, prompt)
            seconds.append(time.perf_counter() - started)
            for _, raw in calls:
                calls_made += 1
                try:
                    json.loads(raw)
                    valid += 1
                except ValueError:
                    pass
            if tool is None:
                quiet += not calls
                continue
            if calls and calls[0][0] == tool:
                right_tool += 1
                try:
                    right_args += _matches(arguments, json.loads(calls[0][1]))
                except ValueError:
                    pass
    backend.close()
    logger.remove(sink)
    calls_made += len(unreadable)  # written but unreadable: invalid JSON
    n_tool, n_quiet = len(tool_cases) * runs, (len(CASES) - len(tool_cases)) * runs
    return {"model": model, "prompts": len(CASES) * runs, "right_tool": round(right_tool / n_tool, 2),
            "right_arguments": round(right_args / n_tool, 2),
            "valid_json": round(valid / calls_made, 2) if calls_made else None,
            "no_call_when_none_needed": round(quiet / n_quiet, 2), "median_s": round(statistics.median(seconds), 2)}


async def main(models: list[str], runs: int) -> None:
    for model in models:
        print(json.dumps(await measure(model, runs)), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    asyncio.run(main(args.models, args.runs))
