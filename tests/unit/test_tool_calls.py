"""Reading a small model's tool calls out of its text, and merging streamed call deltas."""

from __future__ import annotations

import json
import re

import pytest
from openai.types.chat.chat_completion_chunk import ChoiceDeltaToolCall

from cadence.router.tool_calls import TextToolCalls, ToolCallMerger, parse_calls

TOOLS = {"get_weather", "roll_dice"}


@pytest.mark.parametrize("text, name, arguments", [
    ('{"name": "get_weather", "arguments": {"city": "Paris"}}', "get_weather", {"city": "Paris"}),
    ('{{"name": "get_weather", "arguments": {"city": "Oslo"}}}', "get_weather", {"city": "Oslo"}),  # doubled
    ('{{"name": "get_weather", "arguments": {{"city": "Rome"}}}}', "get_weather", {"city": "Rome"}),  # all doubled
    ('Sure! ```json\n{"name": "roll_dice", "arguments": {"sides": 20}}\n``` Good luck.', "roll_dice", {"sides": 20}),
    ('<tool_call>\n{"name": "get_weather", "arguments": "{\\"city\\": \\"Lima\\"}"}\n</tool_call>', "get_weather",
     {"city": "Lima"}),  # arguments as a JSON string
    ('{"type": "function", "function": {"name": "roll_dice", "parameters": {"sides": 6}}}', "roll_dice", {"sides": 6}),
])
def test_calls_are_read_leniently(text, name, arguments):
    calls, _ = parse_calls(text, TOOLS)
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [(name, arguments)]
    assert calls[0].id.startswith("call_")


@pytest.mark.parametrize("text", [
    "I like {braces} in prose.", '{"name": "get_weather", "arguments": [1, 2]}',
    '{"name": "get_weather", "arguments": {"city": "Par', '{"name": "Bob", "age": 3}',
])
def test_anything_else_is_no_call(text):
    assert parse_calls(text, TOOLS)[0] == []


def test_an_undeclared_tool_in_call_shape_is_a_call_the_model_will_be_told_about():
    (call,), _ = parse_calls('{"name": "delete_everything", "arguments": {}}', TOOLS)
    assert call.name == "delete_everything"


@pytest.mark.parametrize("text", ['{"name": "get_weather", "arguments": {"city": "Par',  # cut by max_tokens
                                  '```json\n{"name": "roll_dice", "arguments": {"sides": }}'])
def test_a_call_that_cannot_be_read_is_dropped_never_spoken(text):
    reader = TextToolCalls(["get_weather", "roll_dice"])
    said = reader.feed("Sure. " + text)
    assert said == "Sure. " and reader.finish() == ("", [])


def test_prose_streams_and_a_call_is_held_until_the_end():
    reader = TextToolCalls(["get_weather"])
    said = "".join(reader.feed(p) for p in ["Let me ", "check. ", '{"na', 'me": "get_weather", ', '"arguments": {"city": '
                                            '"Paris"}}'])
    assert said == "Let me check. " and reader.holding
    tail, calls = reader.finish()
    assert tail == "" and calls[0].name == "get_weather"


def test_held_text_that_is_no_call_is_delivered_whole_at_the_end():
    reader = TextToolCalls(["get_weather"])
    said = reader.feed("A set {of") + reader.feed(" things} and a <tool") + reader.feed("box>.")
    tail, calls = reader.finish()
    assert said + tail == "A set {of things} and a <toolbox>." and calls == []
    reader = TextToolCalls(["get_weather"])
    assert reader.feed("Hello <tool") == "Hello " and reader.feed("box>") == "<toolbox>"  # not an opener after all


def test_stream_deltas_merge_by_index():
    merger = ToolCallMerger()
    merger.feed([ChoiceDeltaToolCall.model_validate({"index": 0, "id": "call_a", "type": "function",
                                                     "function": {"name": "get_weather", "arguments": '{"ci'}})])
    merger.feed([ChoiceDeltaToolCall.model_validate({"index": 1, "id": "call_b", "function": {"name": "roll_dice"}}),
                 ChoiceDeltaToolCall.model_validate({"index": 0, "function": {"arguments": 'ty": "Paris"}'}})])
    merger.feed([ChoiceDeltaToolCall(index=2)])  # a marker with no name is no call
    calls = merger.calls()
    assert [(c.id, c.name, c.arguments) for c in calls] == [("call_a", "get_weather", '{"city": "Paris"}'),
                                                            ("call_b", "roll_dice", "{}")]


def _call(name: str, arguments: dict):
    return ChoiceDeltaToolCall.model_validate({"index": 0, "id": "c", "type": "function",
                                               "function": {"name": name, "arguments": json.dumps(arguments)}})


WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
    "required": ["city", "unit"]}}}
ROLL = {"type": "function", "function": {"name": "roll_dice", "parameters": {
    "type": "object", "properties": {"sides": {"type": "integer"}}, "required": ["sides"]}}}


def test_the_small_model_guards_drop_guesses_and_repeats_but_not_new_asks():
    from cadence.router.backends.llamacpp_tools import spurious

    tired = [{"role": "user", "content": "I had a long day at work."}]
    assert spurious([_call("get_weather", {"city": "London", "unit": "c"})], [WEATHER], tired)  # a guess
    paris = [{"role": "user", "content": "What's the weather in Paris?"}]
    assert not spurious([_call("get_weather", {"city": "Paris", "unit": "f"})], [WEATHER], paris)  # enum not checked
    assert not spurious([_call("roll_dice", {"sides": 20})], [ROLL], [{"role": "user", "content": "Roll a d20"}])
    assert spurious([_call("roll_dice", {"sides": 20})], [ROLL], tired)  # nothing asked of it
    call = {"id": "c1", "type": "function", "function": {"name": "roll_dice", "arguments": '{"sides": 20}'}}
    turn = [{"role": "user", "content": "Roll a d20"}, {"role": "assistant", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": "17"}]
    assert spurious([_call("roll_dice", {"sides": 20})], [ROLL], turn)  # repeats this turn's answered call
    again = [*turn, {"role": "assistant", "content": "You rolled 17."}, {"role": "user", "content": "Roll again!"}]
    assert not spurious([_call("roll_dice", {"sides": 20})], [ROLL], again)  # a new ask: a new roll


async def test_the_shipped_example_tools_have_schemas_and_run():
    from cadence.config import load_and_validate
    from cadence.tools.server import ServerTools

    tools = ServerTools(load_and_validate("configs/nova-tools.yaml").config.tools)
    schemas = {s.name: s for s in tools.schemas()}
    assert schemas["roll_dice"].properties["sides"]["maximum"] == 1000 and schemas["roll_dice"].required == []
    rolled = await tools.python["roll_dice"].run({"sides": 20, "count": 2})
    first, second, total = map(int, re.findall(r"show (\d+), (\d+): (\d+) in all", rolled)[0])
    assert 1 <= first <= 20 and 1 <= second <= 20 and total == first + second
    assert (await tools.python["roll_dice"].run({"sides": 1})).startswith("the tool failed: bad arguments")
    assert "(Asia/Tokyo)" in await tools.python["current_time"].run({"timezone": "Asia/Tokyo"})
    assert (await tools.python["current_time"].run({"timezone": "Mars/Base"})).startswith("the tool failed: ")


def test_a_call_with_nothing_to_guess_is_kept_only_when_the_user_asked_about_it():
    from cadence.router.backends.llamacpp_tools import spurious

    clock = {"type": "function", "function": {"name": "current_time", "description": "The current date and time",
                                              "parameters": {"type": "object", "properties": {}}}}
    call = [_call("current_time", {})]
    assert spurious(call, [clock], [{"role": "user", "content": "How was your day?"}])
    assert not spurious(call, [clock], [{"role": "user", "content": "What time is it?"}])


async def test_a_chain_of_server_calls_ends_at_the_cap_without_running_the_model_again():
    from types import SimpleNamespace

    from cadence.tools.server import MAX_CHAINED_CALLS, PythonToolRunner
    from cadence.tools.spec import PythonTool

    runner = PythonToolRunner("roll", PythonTool(function="cadence.tools.examples:roll_dice"))
    messages = [{"role": "user", "content": "roll"}] + [{"role": "tool", "content": "4"}] * MAX_CHAINED_CALLS
    got = []

    async def result(value, properties=None):
        got.append((value, properties))

    params = SimpleNamespace(context=SimpleNamespace(get_messages=lambda: messages), arguments={}, result_callback=result)
    await runner.handle(params)
    (value, properties), = got
    assert value.startswith("the tool failed: 8 tool calls in a row") and properties.run_llm is False
    got.clear()
    params.context = SimpleNamespace(get_messages=lambda: messages[:3])
    await runner.handle(params)
    assert got[0][0].startswith("The 6-sided die shows")
