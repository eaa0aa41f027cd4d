"""Reading a small model's tool calls out of its text, and merging streamed call deltas."""

from __future__ import annotations

import json

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
    "I like {braces} in prose.", '{"name": "delete_everything", "arguments": {}}',  # not a declared tool
    '{"name": "get_weather", "arguments": [1, 2]}', '{"name": "get_weather", "arguments": {"city": "Par',
])
def test_anything_else_is_no_call(text):
    assert parse_calls(text, TOOLS)[0] == []


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
