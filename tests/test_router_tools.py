"""Tools through the router with the openai SDK: tool_calls out, stream and non-stream, from a
scripted backend double, across a failover, and from the embedded Qwen2.5-Coder model."""

from __future__ import annotations

import json

import pytest
from openai import AsyncOpenAI

import fake_backend
from cadence.config import load_config_text, validate
from cadence.pipelines.builder import PipelineFactory
from cadence.server import create_app
from servers import serving

QWEN = "qwen/qwen2.5-coder-0.5b-instruct"
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
ASK = [{"role": "system", "content": "You are Nova, a friendly companion."},
       {"role": "user", "content": "What's the weather in Paris?"}]


@pytest.fixture(scope="module")
async def client(store):
    async with serving(fake_backend.app) as fake:
        providers = {"tools": {"kind": "openai", "base_url": f"{fake}/tools/v1"},
                     "tooldrop": {"kind": "openai", "base_url": f"{fake}/tooldrop/v1"},
                     "qwen": {"kind": "llamacpp", "model": "qwen2.5-coder-0.5b-instruct"}}
        config = {"router": {"providers": providers}, "pipeline": [{"type": "vad"}]}
        factory = PipelineFactory(validate(load_config_text(json.dumps(config))), store)
        async with serving(create_app(factory)) as url:
            yield AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)


async def _streamed(stream) -> tuple[str, dict[int, dict], str | None, list]:
    """Text, calls merged by index, the finish reason and the tool-call deltas as they came."""
    text, calls, finish, deltas = "", {}, None, []
    async for chunk in stream:
        for choice in chunk.choices:
            text += choice.delta.content or ""
            for delta in choice.delta.tool_calls or []:
                deltas.append(delta)
                call = calls.setdefault(delta.index, {"id": None, "name": "", "arguments": ""})
                call["id"] = delta.id or call["id"]
                call["name"] += delta.function.name or ""
                call["arguments"] += delta.function.arguments or ""
            finish = choice.finish_reason or finish
    return text, calls, finish, deltas


async def test_tool_calls_come_back_whole_without_stream_and_round_trip(client):
    reply = await client.chat.completions.create(model="tools/m", messages=ASK, tools=[WEATHER])
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content == "Let me check."
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_fake") and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert fake_backend.calls[-1]["tools"] == [WEATHER]  # passed through as sent
    answer = await client.chat.completions.create(model="tools/m", tools=[WEATHER], messages=[
        *ASK, choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 C"}])
    assert answer.choices[0].message.content == "The tool says: sunny, 21 C." and not answer.choices[0].message.tool_calls


async def test_tool_calls_stream_in_openai_chunk_shape(client):
    stream = await client.chat.completions.create(model="tools/m", messages=ASK, tools=[WEATHER],
                                                  tool_choice="auto", stream=True)
    text, calls, finish, deltas = await _streamed(stream)
    assert text == "Let me check." and finish == "tool_calls"
    assert deltas[0].id.startswith("call_fake") and deltas[0].type == "function"  # id, type and name come first
    assert calls[0]["name"] == "get_weather" and json.loads(calls[0]["arguments"]) == {"city": "Paris"}


async def test_a_backend_that_dies_mid_call_leaves_no_half_call_after_failover(client):
    stream = await client.chat.completions.create(model="tooldrop/m", messages=ASK, tools=[WEATHER], stream=True,
                                                  extra_body={"models": ["tools/m"]})
    text, calls, finish, _ = await _streamed(stream)
    assert text == "Let me check."  # said once, though both attempts said it
    assert len(calls) == 1 and json.loads(calls[0]["arguments"]) == {"city": "Paris"} and finish == "tool_calls"
    assert fake_backend.calls[-1]["tools"] == [WEATHER]  # the fallback was offered the same tools


@pytest.mark.parametrize("stream", [False, True])
async def test_the_embedded_qwen_calls_a_tool_with_the_right_argument(client, stream):
    params = {"model": QWEN, "messages": ASK, "tools": [WEATHER], "temperature": 0, "max_tokens": 60}
    if stream:
        text, calls, finish, _ = await _streamed(await client.chat.completions.create(**params, stream=True))
        call = calls[0]
    else:
        reply = await client.chat.completions.create(**params)
        text, finish = reply.choices[0].message.content or "", reply.choices[0].finish_reason
        call = reply.choices[0].message.tool_calls[0].function.model_dump()
    assert finish == "tool_calls" and call["name"] == "get_weather"
    assert json.loads(call["arguments"]) == {"city": "Paris"}
    assert "{" not in text and "get_weather" not in text  # no half-parsed call as content


async def test_the_embedded_qwen_answers_from_a_tool_result_and_without_tools_talks(client):
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    reply = await client.chat.completions.create(model=QWEN, tools=[WEATHER], temperature=0, max_tokens=40, messages=[
        *ASK, {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"sky": "sunny", "celsius": 21}'}])
    assert "21" in reply.choices[0].message.content and not reply.choices[0].message.tool_calls
    plain = await client.chat.completions.create(model=QWEN, messages=ASK, tools=[WEATHER], tool_choice="none",
                                                 temperature=0, max_tokens=30)
    assert plain.choices[0].finish_reason != "tool_calls" and not plain.choices[0].message.tool_calls
    # A history of calls and no tools offered: a call the model imitates is read and dropped, never content.
    history = [*ASK, {"role": "assistant", "content": None, "tool_calls": [call]},
               {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
               {"role": "assistant", "content": "It is sunny."}, {"role": "user", "content": "And in Rome?"}]
    for extra in ({}, {"tools": [WEATHER], "tool_choice": "none"}):
        reply = await client.chat.completions.create(model=QWEN, messages=history, temperature=0, max_tokens=40,
                                                     **extra)
        text = reply.choices[0].message.content or ""
        assert '"name"' not in text and "get_weather" not in text and not reply.choices[0].message.tool_calls, text
