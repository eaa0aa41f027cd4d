"""Hostile client messages are refused precisely, and the way out never lingers silently:
JSON edge cases at decode, lone surrogates, and the bounded outbox."""

from __future__ import annotations

import asyncio
import json

import pytest

from cadence.transports.realtime.outbox import Outbox
from cadence.transports.realtime.protocol import MAX_DEPTH, ProtocolError, decode_message, parse_client_event


@pytest.mark.parametrize("raw, says, param", [
    ('{"type": "session.update", "session": {"x": NaN}}', "NaN", "session.x"),
    ('{"type": "session.update", "session": {"x": Infinity}}', "Infinity", "session.x"),
    ('{"type": "session.update", "session": {"tools": [{}, {"x": -Infinity}]}}', "Infinity", "session.tools[1].x"),
    ('{"type": "conversation.item.truncate", "audio_end_ms": ' + "9" * 5000 + "}", "out of range", "audio_end_ms"),
    ('{"type": "x", "a": ' + "[" * 1000 + "]" * 1000 + "}", "deeper", None),
    ('{"type": "x", "a": ' + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "}", "deeper", None),
])
def test_json_a_client_cannot_mean_is_invalid_json(raw, says, param):
    with pytest.raises(ProtocolError) as info:
        decode_message(raw)
    assert info.value.code == "invalid_json" and says in str(info.value), str(info.value)
    assert info.value.param == param  # the field holding the number JSON cannot mean


def test_lone_surrogates_become_replacement_characters_and_pairs_stay():
    data = decode_message('{"type": "session.update", "session": {"instructions": "hi \\ud800 there \\ud83d\\ude00"}}')
    text = data["session"]["instructions"]
    assert text == "hi \ufffd there \U0001F600"
    text.encode("utf-8")  # sendable
    shallow = decode_message('{"type": "x", "a": ' + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "}")
    assert shallow["type"] == "x"


async def test_a_client_that_does_not_read_is_closed_with_1008_not_buffered_for_ever():
    closed, release = [], asyncio.Event()

    async def send(event):
        await release.wait()  # the client never reads: every send waits

    async def close(code, reason):
        closed.append((code, reason))

    outbox = Outbox(send, close, max_bytes=64 * 1024)
    outbox.start()
    for _ in range(100):
        outbox.put({"type": "response.output_audio.delta", "delta": "A" * 4096})
    await asyncio.sleep(0.05)
    assert closed == [(1008, "client not reading")] and outbox.closed
    assert outbox.backlog_bytes == 0  # the backlog is freed at once
    outbox.put({"type": "response.done"})  # nothing more is taken
    release.set()
    await outbox.finish()


async def test_a_failed_send_closes_with_1011_and_an_unencodable_event_is_sent_replaced():
    sent, closed = [], []

    async def send(event):
        text = json.dumps(event, ensure_ascii=False)
        text.encode("utf-8")  # what a WebSocket does: raises on a lone surrogate
        if event["type"] == "boom":
            raise RuntimeError("the socket broke")
        sent.append(event)

    async def close(code, reason):
        closed.append(code)

    outbox = Outbox(send, close)
    outbox.start()
    outbox.put({"type": "session.updated", "session": {"instructions": "a \ud800 b"}})
    outbox.put({"type": "boom"})
    outbox.put({"type": "never"})
    await asyncio.sleep(0.05)
    assert sent == [{"type": "session.updated", "session": {"instructions": "a \ufffd b"}}]
    assert closed == [1011] and outbox.closed
    await outbox.finish()


def test_rest_names_inside_response_create_are_refused_naming_them():

    for key in ("voiceId", "modelId"):
        with pytest.raises(ProtocolError) as info:
            parse_client_event({"type": "response.create", "response": {key: "x"}})
        assert info.value.code == "unsupported_field" and info.value.param == f"response.{key}"


@pytest.mark.parametrize("number", ["1e999", "-1e999", "1.5e308", "9" * 401, "9007199254740993", "1e16"])
def test_numbers_no_field_can_mean_are_invalid_json(number):
    with pytest.raises(ProtocolError) as info:
        decode_message('{"type": "session.update", "session": {"audio": {"input": {"turn_detection": '
                       '{"silence_duration_ms": %s}}}}, "event_id": "e1"}' % number)
    assert info.value.code == "invalid_json" and "out of range" in str(info.value)
    assert info.value.event_id == "e1" and info.value.param == "session.audio.input.turn_detection.silence_duration_ms"


def test_a_union_names_the_fault_of_the_member_the_client_chose():
    with pytest.raises(ProtocolError) as info:
        parse_client_event({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
            "turn_detection": {"type": "semantic_vad", "eagerness": 5}}}}})
    assert info.value.param == "session.audio.input.turn_detection.eagerness"  # not "type should be server_vad"
    with pytest.raises(ProtocolError) as info:
        parse_client_event({"type": "conversation.item.create", "item": {"type": "mesage", "role": "user"}})
    assert info.value.param == "item.type"  # no member chosen: the type itself


async def test_an_event_counts_for_its_size_in_the_backlog():
    closed = []

    async def send(event):
        await asyncio.sleep(3600)

    async def close(code, reason):
        closed.append(code)

    outbox = Outbox(send, close, max_bytes=1024 * 1024)
    outbox.start()
    for _ in range(4):  # big echoes (a long item text, a session with long instructions) count in full
        outbox.put({"type": "conversation.item.added", "item": {"content": [{"text": "x" * 400_000}]}})
    await asyncio.sleep(0.05)
    assert closed == [1008]
