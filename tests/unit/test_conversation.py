"""Conversation items ↔ context messages, and responses with several output items (no models)."""

from __future__ import annotations

import pytest
from pipecat.frames.frames import LLMMessagesAppendFrame, LLMMessagesTransformFrame
from pipecat.processors.aggregators.llm_context import LLMContext

from cadence.transports.realtime import conversation as conversation_module
from cadence.transports.realtime.conversation import Conversation
from cadence.transports.realtime.protocol import ProtocolError
from cadence.transports.realtime.responses import Response, ResponseOptions, ResponseTracker


@pytest.fixture
def context() -> LLMContext:
    return LLMContext()


@pytest.fixture
def conversation(context) -> Conversation:
    async def queue(frame):  # what pipecat's user aggregator does with these frames
        if isinstance(frame, LLMMessagesAppendFrame):
            context.add_messages(frame.messages)
        elif isinstance(frame, LLMMessagesTransformFrame):
            context.transform_messages(frame.transform)
        else:
            raise AssertionError(f"unexpected frame {frame}")

    return Conversation(context, queue)


def item(item_id: str, role: str = "user") -> dict:
    return {"id": item_id, "type": "message", "role": role, "content": []}


async def test_client_items_map_to_their_messages_and_delete_removes_only_theirs(conversation, context):
    for n, text in enumerate(["same words", "same words", "other"]):
        conversation.add(item(f"i{n}"))
        await conversation.append_message(f"i{n}", "user", text)
    await conversation.delete("i1")
    assert [m["content"] for m in context.get_messages()] == ["same words", "other"]
    assert conversation.messages_of("i0")[0] is context.get_messages()[0]  # the first, not a text match
    assert list(conversation.items) == ["i0", "i2"]
    with pytest.raises(ProtocolError) as info:
        conversation.get("i1")
    assert info.value.code == "item_not_found" and info.value.param == "item_id"


async def test_aggregator_messages_are_claimed_in_order(conversation, context):
    context.add_message({"role": "user", "content": "hello"})  # as the user aggregator adds a spoken turn
    conversation.add(item("u1"))
    assert await conversation.claim_new("u1", "user") == 1
    context.add_message({"role": "assistant", "content": "hi! hi!"})
    context.add_message({"role": "user", "content": "hello"})
    conversation.add(item("a1", "assistant"))
    conversation.add(item("u2"))
    assert await conversation.claim_new("a1", "assistant") == 1
    assert await conversation.claim_new("u2", "user") == 1
    assert conversation.messages_of("u2")[0] is context.get_messages()[2]
    assert await conversation.claim_new("u3", "user") == 0  # nothing new: nothing claimed twice


async def test_truncate_replaces_the_message_by_identity(conversation, context):
    context.add_message({"role": "assistant", "content": "one two three"})
    context.add_message({"role": "assistant", "content": "one two three"})
    conversation.add(item("a1", "assistant"))
    await conversation.claim_new("a1", "assistant")  # both segments of one reply
    context.add_message({"role": "assistant", "content": "one two three"})  # a later, unclaimed reply
    await conversation.replace_text("a1", "one")
    assert [m["content"] for m in context.get_messages()] == ["one", "one two three"]
    await conversation.delete("a1")
    assert [m["content"] for m in context.get_messages()] == ["one two three"]


async def test_items_are_bounded_and_evicted_messages_are_not_claimed_again(conversation, context, monkeypatch):
    monkeypatch.setattr(conversation_module, "MAX_ITEMS", 3)
    for n in range(5):
        context.add_message({"role": "user", "content": f"turn {n}"})
        conversation.add(item(f"u{n}"))
        assert await conversation.claim_new(f"u{n}", "user") == 1
    assert list(conversation.items) == ["u2", "u3", "u4"]
    assert await conversation.claim_new("u5", "user") == 0  # u0/u1's messages stay claimed


def test_a_response_can_hold_several_output_items():
    response = Response("resp_1", ResponseOptions(["text"]))
    first, second = response.add_message("item_a"), response.add_message("item_b")
    assert (first.output_index, second.output_index) == (0, 1) and response.message is second
    assert second.text_delta("hi")["output_index"] == 1
    response.finish("completed")
    body = response.resource()
    assert [o["id"] for o in body["output"]] == ["item_a", "item_b"] and body["status_details"] is None
    assert second.done_events(previous_item_id="item_a")[-1]["item"]["status"] == "completed"


def test_tracker_applies_requested_options_once_and_pairs_lagging_turns():
    tracker = ResponseTracker(["audio"])
    tracker.request(ResponseOptions(["text"], {"max_tokens": 5}))
    first = tracker.start("r1")
    assert first.text_only and first.options.overrides == {"max_tokens": 5}
    tracker.assistant_turn_started()
    second = tracker.start("r2")
    assert not second.text_only and second.options.overrides == {}  # the session's again
    tracker.assistant_turn_started()
    assert tracker.assistant_turn_stopped() is first and tracker.assistant_turn_stopped() is second
    assert tracker.assistant_turn_stopped() is None


def test_without_barge_in_the_next_reply_does_not_take_the_playing_ones_audio():
    tracker = ResponseTracker(["audio"])
    first = tracker.start("r1")
    tracker.assistant_turn_started()
    second = tracker.start("r2")  # the user spoke; no barge-in, so r1 still plays
    assert tracker.current is second and tracker.speaking is first
    first.finish("completed")
    assert tracker.speaking is second
    cancelled = tracker.start("r3")
    cancelled.finish("cancelled", "client_cancelled")
    tracker.assistant_turn_started()  # r2's turn: r3 ended before its own began and is skipped
    assert tracker.assistant_turn_stopped() is first and tracker.assistant_turn_stopped() is second


async def test_an_edit_made_before_the_reply_reached_the_context_waits_for_it(conversation, context):
    conversation.add(item("a1", "assistant"))
    conversation.expect("a1")
    await conversation.replace_text("a1", "Once")  # truncated while the aggregator still holds the reply
    context.add_message({"role": "assistant", "content": "Once upon a time"})
    await conversation.claim_new("a1", "assistant")
    assert [m["content"] for m in context.get_messages()] == ["Once"]
    conversation.add(item("a2", "assistant"))
    conversation.expect("a2")
    await conversation.delete("a2")
    context.add_message({"role": "assistant", "content": "a deleted reply"})
    await conversation.claim_new("a2", "assistant")
    assert [m["content"] for m in context.get_messages()] == ["Once"]


def test_truncation_keeps_what_was_heard():
    response = Response("resp_1", ResponseOptions(["audio"]))
    output = response.add_message("item_a")
    output.transcript_delta("One two three four.")
    output.audio_delta(b"\0\0" * 2400, 1000)
    output.transcript_delta("Five six.")
    output.audio_delta(b"\0\0" * 2400, 1000)
    assert output.truncate(1500) == "One two three four."
    assert output.truncate(500) == "One two"
    assert output.truncate(0) == ""


async def test_items_folded_into_memory_leave_the_live_conversation(conversation, context):
    for n in range(4):
        conversation.add(item(f"i{n}"))
        await conversation.append_message(f"i{n}", "user", f"turn {n}")
    conversation.add(item("pending", "assistant"))
    conversation.expect("pending")  # a reply still playing: its message is not in yet
    context.set_messages(context.get_messages()[2:])  # the context stage folded the two oldest
    assert conversation.prune() == ["i0", "i1"]
    assert list(conversation.items) == ["i2", "i3", "pending"]
    with pytest.raises(ProtocolError, match="folded into the session's memory") as caught:
        conversation.get("i0")
    assert caught.value.param == "item_id"
    assert conversation.get("i2")["id"] == "i2"
    assert conversation.prune() == []
