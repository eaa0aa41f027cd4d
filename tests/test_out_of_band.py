"""Out-of-band responses (``conversation: "none"``, ``input``) with the openai SDK, on the
real embedded stack: made beside the conversation, never entering it, echoing metadata."""

from __future__ import annotations

import pytest

from cadence.server import create_app
from servers import serving
from test_realtime import client, collect, of


@pytest.fixture
async def conn(nova_factory):
    async with serving(create_app(nova_factory)) as base:
        async with client(base.replace("http://", "ws://")).realtime.connect(model="cadence") as connection:
            await collect(connection, until="session.created")
            await connection.send({"type": "session.update", "session": {"type": "realtime",
                                                                         "output_modalities": ["text"]}})
            await collect(connection, until="session.updated")
            yield connection


async def say(conn, text: str) -> list:
    await conn.send({"type": "conversation.item.create", "item": {
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}})
    await conn.send({"type": "response.create"})
    return await collect(conn, timeout=60)


async def test_an_out_of_band_response_stays_out_of_the_conversation(conn):
    first = await say(conn, "My name is Sam and I just got back from sailing.")
    user_item = of(first, "conversation.item.added")[0].item.id
    await conn.send({"type": "response.create", "response": {
        "conversation": "none", "output_modalities": ["text"], "metadata": {"purpose": "title"},
        "instructions": "Give this conversation a title of at most five words. Answer with the title only."}})
    events = await collect(conn, timeout=60)
    created = of(events, "response.created")[0].response
    assert created.conversation_id is None and created.metadata == {"purpose": "title"}
    done = of(events, "response.done")[0].response
    assert done.status == "completed" and done.metadata == {"purpose": "title"}, done.status_details
    title = done.output[0].content[0].text
    assert title.strip() and "".join(e.delta for e in of(events, "response.output_text.delta")) == title
    assert not of(events, "conversation.item.added") and not of(events, "conversation.item.done")
    await conn.send({"type": "conversation.item.retrieve", "item_id": done.output[0].id})
    async for event in conn:  # the title never became an item of the conversation
        if event.type == "error":
            assert event.error.code == "item_not_found"
            break
        assert event.type != "conversation.item.retrieved", event
    await conn.send({"type": "conversation.item.retrieve", "item_id": user_item})
    assert (await collect(conn, until="conversation.item.retrieved"))[-1].item.id == user_item


async def test_input_items_are_the_context_and_auto_adds_the_reply(conn):
    first = await say(conn, "I live in Lisbon.")
    reference = of(first, "conversation.item.added")[0].item.id
    await conn.send({"type": "response.create", "response": {
        "conversation": "none", "output_modalities": ["text"],
        "instructions": "Answer yes or no only.",
        "input": [{"type": "item_reference", "id": reference},
                  {"type": "message", "role": "user",
                   "content": [{"type": "input_text", "text": "Does the user live in Portugal?"}]}]}})
    events = await collect(conn, timeout=60)
    assert of(events, "response.done")[0].response.status == "completed"
    assert not of(events, "conversation.item.added")
    # conversation "auto" with its own input: the reply joins the conversation.
    await conn.send({"type": "response.create", "response": {
        "output_modalities": ["text"], "input": [{"type": "message", "role": "user",
                                                   "content": [{"type": "input_text", "text": "Say hello."}]}]}})
    events = await collect(conn, timeout=60)
    done = of(events, "response.done")[0].response
    assert done.status == "completed" and done.conversation_id == "auto"
    assert [e.item.id for e in of(events, "conversation.item.added")] == [done.output[0].id]


async def test_bad_out_of_band_requests_name_the_field_and_the_session_goes_on(conn):
    cases = [
        ({"conversation": "none", "output_modalities": ["audio"]}, "response.output_modalities"),
        ({"conversation": "none", "input": [{"type": "item_reference", "id": "item_nope"}]}, "response.input.0.id"),
        ({"conversation": "none", "input": [{"type": "function_call", "call_id": "c1", "name": "f",
                                                  "arguments": "{}"}]}, "response.input.0.type"),
        ({"conversation": "none", "input": "hello"}, "response.input"),
        ({"conversation": "none", "input": [{"type": "item_reference", "id": ["x"]}]}, "response.input.0.id"),
        ({"conversation": "none", "metadata": {"n": 3}}, "response.metadata.n"),
        ({"conversation": "none", "audio": {"output": {"voice": "alloy"}}}, "response.audio"),
        ({"conversation": "none", "providerData": {"tts": {"deliveryMode": "STABLE"}}}, "response.providerData.tts"),
        ({"conversation": "none", "tools": [{"type": "function", "name": "f"}]}, "response.tools"),
    ]
    for response, param in cases:
        await conn.send({"type": "response.create", "response": response})
        async for event in conn:
            assert event.type != "response.created", (response, event)
            if event.type == "error":
                assert event.error.param == param, (response, event.error)
                break
    assert of(await say(conn, "Hello!"), "response.done")[0].response.status == "completed"


async def test_an_out_of_band_response_runs_beside_a_reply_and_can_be_cancelled(conn):
    await conn.send({"type": "conversation.item.create", "item": {
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Tell me about the sea."}]}})
    await conn.send({"type": "response.create"})
    await conn.send({"type": "response.create", "response": {"conversation": "none", "metadata": {"k": "side"}}})
    events = await collect(conn, until="response.created")
    events += await collect(conn, until="response.created")  # both began: no active-response error
    done = []
    while len(done) < 2:
        events += await collect(conn, timeout=60)
        done = of(events, "response.done")
    assert sorted(r.response.conversation_id or "none" for r in done) == ["auto", "none"]
    assert all(r.response.status == "completed" for r in done)
    await conn.send({"type": "response.create", "response": {"conversation": "none", "max_output_tokens": 200,
                                                             "instructions": "Write a long story."}})
    created = (await collect(conn, until="response.created"))[-1].response
    await conn.send({"type": "response.cancel", "response_id": created.id})
    done = [e for e in await collect(conn, timeout=60) if e.type == "response.done"][0].response
    assert done.id == created.id and done.status == "cancelled"


async def test_an_out_of_band_response_whose_model_fails_is_failed_not_empty(conn, nova_factory, monkeypatch):
    from cadence.router import RouterError

    def down(params):
        raise RouterError("every backend failed (local/qwen@0: connection_error)", status=503)

    monkeypatch.setattr(nova_factory.router, "stream", down)
    await conn.send({"type": "response.create", "response": {"conversation": "none", "metadata": {"k": "v"}}})
    events = []
    async for event in conn:
        events.append(event)
        if event.type == "response.done":
            break
    assert [e.error.code for e in of(events, "error")] == ["llm_failed"]  # an error first, as in-band
    done = events[-1].response
    assert done.status == "failed" and done.status_details.error.code == "llm_failed", done.status_details
    assert "every backend failed" in done.status_details.error.message and done.metadata == {"k": "v"}
    monkeypatch.undo()
    assert of(await say(conn, "Hello!"), "response.done")[0].response.status == "completed"  # the session goes on
