"""The Realtime wire protocol on its own: decoding, client event validation, beta aliases, errors."""

from __future__ import annotations

import base64
import json

import pytest

from cadence.transports.realtime.protocol import (
    CLIENT_EVENT_CLASSES,
    MAX_MESSAGE_BYTES,
    ProtocolError,
    decode_audio,
    decode_message,
    error_event,
    normalize,
    normalize_session,
    parse_client_event,
)

USER_TEXT = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi Nova!"}]}

# One valid event of each client type the GA protocol defines.
VALID_EVENTS = {
    "session.update": {"type": "session.update", "session": {"type": "realtime", "instructions": "Be brief."}},
    "input_audio_buffer.append": {"type": "input_audio_buffer.append", "audio": base64.b64encode(b"\0\0" * 8).decode()},
    "input_audio_buffer.commit": {"type": "input_audio_buffer.commit"},
    "input_audio_buffer.clear": {"type": "input_audio_buffer.clear"},
    "output_audio_buffer.clear": {"type": "output_audio_buffer.clear"},
    "conversation.item.create": {"type": "conversation.item.create", "item": USER_TEXT},
    "conversation.item.retrieve": {"type": "conversation.item.retrieve", "item_id": "item_1"},
    "conversation.item.truncate": {"type": "conversation.item.truncate", "item_id": "item_1", "content_index": 0,
                                   "audio_end_ms": 1500},
    "conversation.item.delete": {"type": "conversation.item.delete", "item_id": "item_1"},
    "response.create": {"type": "response.create", "response": {"output_modalities": ["text"]}},
    "response.cancel": {"type": "response.cancel"},
}


def protocol_error(call, *args) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        call(*args)
    return info.value


# --- decode_message -------------------------------------------------------------------------

def test_decode_message_returns_the_object():
    assert decode_message('{"type": "response.cancel", "event_id": "e1"}') == {"type": "response.cancel",
                                                                              "event_id": "e1"}
    assert decode_message(b'{"type": "input_audio_buffer.commit"}') == {"type": "input_audio_buffer.commit"}


@pytest.mark.parametrize("raw", ["{not json", "", '{"type": "x"', b"\xff\xfe\x00garbage"])
def test_decode_message_rejects_invalid_json(raw):
    exc = protocol_error(decode_message, raw)
    assert exc.code == "invalid_json" and exc.kind == "invalid_request_error"


@pytest.mark.parametrize("raw", ["[1, 2]", '"session.update"', "42", "null", "{}", '{"type": 5}', '{"type": null}'])
def test_decode_message_needs_an_object_with_a_string_type(raw):
    exc = protocol_error(decode_message, raw)
    assert (exc.code, exc.param) == ("invalid_event", "type")


def test_decode_message_size_limit_is_4_mib():
    assert MAX_MESSAGE_BYTES == 4 * 1024 * 1024
    head, tail = '{"type": "input_audio_buffer.append", "audio": "', '"}'
    at_limit = head + "A" * (MAX_MESSAGE_BYTES - len(head) - len(tail)) + tail
    assert len(at_limit) == MAX_MESSAGE_BYTES
    assert decode_message(at_limit)["type"] == "input_audio_buffer.append"
    over = head + "A" * (MAX_MESSAGE_BYTES - len(head) - len(tail) + 1) + tail
    exc = protocol_error(decode_message, over)
    assert exc.code == "message_too_large" and str(MAX_MESSAGE_BYTES) in str(exc)
    # checked before parsing: an oversize message is not reported as bad JSON
    assert protocol_error(decode_message, b"x" * (MAX_MESSAGE_BYTES + 1)).code == "message_too_large"


# --- parse_client_event ---------------------------------------------------------------------

def test_there_are_eleven_client_event_types():
    assert set(CLIENT_EVENT_CLASSES) == set(VALID_EVENTS)


@pytest.mark.parametrize("kind", sorted(VALID_EVENTS))
def test_a_valid_event_of_each_type_parses(kind):
    event = parse_client_event(json.loads(json.dumps(VALID_EVENTS[kind])))
    assert isinstance(event, CLIENT_EVENT_CLASSES[kind]) and event.type == kind


def test_parsed_events_keep_their_fields():
    event = parse_client_event(json.loads(json.dumps(VALID_EVENTS["conversation.item.truncate"])))
    assert (event.item_id, event.content_index, event.audio_end_ms) == ("item_1", 0, 1500)
    event = parse_client_event(json.loads(json.dumps(VALID_EVENTS["conversation.item.create"])))
    assert event.item.role == "user" and event.item.content[0].text == "Hi Nova!"


def test_unknown_event_type():
    exc = protocol_error(parse_client_event, {"type": "session.create", "session": {}})
    assert (exc.code, exc.param) == ("unknown_event", "type")
    assert "session.create" in str(exc) and "response.create" in str(exc)  # names the known ones


@pytest.mark.parametrize("event, param", [
    ({"type": "input_audio_buffer.append", "audio": 42}, "audio"),
    ({"type": "input_audio_buffer.append"}, "audio"),
    ({"type": "conversation.item.truncate", "item_id": "i", "content_index": "first", "audio_end_ms": 0},
     "content_index"),
    ({"type": "conversation.item.delete", "item_id": ["i"]}, "item_id"),
    ({"type": "response.create", "response": {"output_modalities": "text"}}, "response.output_modalities"),
    ({"type": "session.update", "session": {"audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}}},
     "session.audio.input.format.rate"),
    ({"type": "conversation.item.create", "item": {**USER_TEXT, "content": [{"type": "input_text", "text": 5}]}},
     "item.content.0.text"),
])
def test_wrong_field_type_names_the_param(event, param):
    exc = protocol_error(parse_client_event, event)
    assert (exc.code, exc.param) == ("invalid_value", param)
    assert str(exc).startswith(f"{param}: ")


# --- beta aliases -----------------------------------------------------------------------------

def test_beta_session_keys_become_ga_keys():
    session = {
        "modalities": ["text"],
        "max_response_output_tokens": 77,
        "voice": "nova",
        "input_audio_format": "pcm16",
        "output_audio_format": "g711_ulaw",
        "input_audio_transcription": {"model": "whisper-1"},
        "turn_detection": {"type": "server_vad", "silence_duration_ms": 400},
    }
    normalize_session(session)
    assert session == {
        "type": "realtime",
        "output_modalities": ["text"],
        "max_output_tokens": 77,
        "audio": {
            "input": {"format": {"type": "audio/pcm", "rate": 24000}, "transcription": {"model": "whisper-1"},
                      "turn_detection": {"type": "server_vad", "silence_duration_ms": 400}},
            "output": {"voice": "nova", "format": {"type": "audio/pcmu"}},
        },
    }


def test_wrong_type_in_a_union_field_names_the_field():
    """``max_output_tokens`` is ``int | Literal["inf"]``: pydantic's member tags stay out of the param."""
    exc = protocol_error(parse_client_event, {"type": "response.create", "response": {"max_output_tokens": "lots"}})
    assert (exc.code, exc.param) == ("invalid_value", "response.max_output_tokens")
    exc = protocol_error(parse_client_event, {"type": "session.update", "session": {"max_output_tokens": [1]}})
    assert (exc.code, exc.param) == ("invalid_value", "session.max_output_tokens")


def test_g711_alaw_and_unknown_format_names():
    session = {"input_audio_format": "g711_alaw", "output_audio_format": "g711_alaw"}
    normalize_session(session)
    assert session["audio"] == {"input": {"format": {"type": "audio/pcma"}},
                                "output": {"format": {"type": "audio/pcma"}}}
    session = {"input_audio_format": "opus"}  # not a beta name: moved as is, for validation to judge
    normalize_session(session)
    assert session["audio"]["input"]["format"] == "opus"
    exc = protocol_error(parse_client_event, {"type": "session.update", "session": {"input_audio_format": "opus"}})
    assert (exc.code, exc.param) == ("invalid_value", "session.audio.input.format")


def test_a_non_string_beta_audio_format_is_judged_not_crashed_on():
    """A beta key holding an object or list is moved as is; a TypeError here would kill the session."""
    event = parse_client_event({"type": "session.update", "session": {"input_audio_format": {"type": "audio/pcmu"}}})
    assert event.session.audio.input.format.type == "audio/pcmu"
    exc = protocol_error(parse_client_event, {"type": "session.update", "session": {"output_audio_format": ["pcm16"]}})
    assert exc.code == "invalid_value" and exc.param.startswith("session.audio.output.format")


def test_ga_keys_win_over_their_beta_aliases():
    session = {"modalities": ["audio"], "output_modalities": ["text"], "voice": "ash",
               "audio": {"output": {"voice": "nova"}}}
    normalize_session(session)
    assert session["output_modalities"] == ["text"] and "modalities" not in session
    assert session["audio"]["output"]["voice"] == "nova" and "voice" not in session


def test_a_ga_session_is_left_alone():
    session = {"type": "realtime", "instructions": "Hi", "audio": {"output": {"voice": "nova"}}}
    normalize_session(session)
    assert session == {"type": "realtime", "instructions": "Hi", "audio": {"output": {"voice": "nova"}}}
    session = {"instructions": "Hi"}
    normalize_session(session)
    assert session == {"type": "realtime", "instructions": "Hi"}  # no audio section invented


def test_beta_session_update_parses_as_the_ga_event():
    event = parse_client_event({"type": "session.update", "session": {
        "modalities": ["text"], "voice": "nova", "input_audio_format": "pcm16", "output_audio_format": "g711_alaw",
        "turn_detection": {"type": "server_vad"}, "max_response_output_tokens": 50}})
    session = event.session
    assert session.output_modalities == ["text"] and session.max_output_tokens == 50
    assert session.audio.output.voice == "nova"
    assert (session.audio.input.format.type, session.audio.input.format.rate) == ("audio/pcm", 24000)
    assert session.audio.output.format.type == "audio/pcma"
    assert session.audio.input.turn_detection.type == "server_vad"


def test_beta_response_create_keys():
    data = {"type": "response.create", "response": {"modalities": ["text"], "max_response_output_tokens": 9}}
    assert normalize(data)["response"] == {"output_modalities": ["text"], "max_output_tokens": 9}
    event = parse_client_event({"type": "response.create",
                                "response": {"modalities": ["audio"], "max_response_output_tokens": "inf"}})
    assert event.response.output_modalities == ["audio"] and event.response.max_output_tokens == "inf"


def test_aliases_are_only_rewritten_where_they_belong():
    data = {"type": "conversation.item.create", "item": {**USER_TEXT, "modalities": ["text"]}}
    assert normalize(json.loads(json.dumps(data))) == data


# --- REST field names -------------------------------------------------------------------------

@pytest.mark.parametrize("session, param", [
    ({"voiceId": "Dennis"}, "session.voiceId"),
    ({"modelId": "inworld-tts-1"}, "session.modelId"),
    ({"audio": {"output": {"voiceId": "Dennis"}}}, "session.audio.output.voiceId"),
])
def test_rest_tts_names_are_rejected_with_their_path(session, param):
    exc = protocol_error(parse_client_event, {"type": "session.update", "session": session})
    assert (exc.code, exc.param) == ("unsupported_field", param)
    assert "audio.output." in str(exc)  # says where the setting lives instead


def test_rest_tts_names_are_allowed_inside_provider_data():
    session = {"providerData": {"voiceId": "Dennis", "tts": {"modelId": "inworld-tts-1"}}}
    normalize_session(session)
    assert session["providerData"] == {"voiceId": "Dennis", "tts": {"modelId": "inworld-tts-1"}}


# --- audio and errors -------------------------------------------------------------------------

def test_decode_audio():
    assert decode_audio(base64.b64encode(b"\x01\x02\x03\x04").decode()) == b"\x01\x02\x03\x04"
    assert decode_audio("") == b""


@pytest.mark.parametrize("bad", ["not base64!", "AAA", "AA==AA==", "ÿÿÿÿ"])
def test_decode_audio_rejects_bad_base64(bad):
    exc = protocol_error(decode_audio, bad)
    assert (exc.code, exc.param) == ("invalid_audio", "audio")


def test_error_event_shape():
    exc = ProtocolError("invalid_value", "audio: Input should be a valid string", param="audio")
    event = error_event(exc, "evt_client_7")
    assert event["type"] == "error" and event["event_id"].startswith("event_")
    assert event["error"] == {"type": "invalid_request_error", "code": "invalid_value",
                              "message": "audio: Input should be a valid string", "param": "audio",
                              "event_id": "evt_client_7"}
    other = error_event(ProtocolError("server_error", "boom", kind="server_error"), None)
    assert other["error"]["event_id"] is None and other["error"]["param"] is None
    assert other["error"]["type"] == "server_error"
    assert other["event_id"] != event["event_id"]  # a fresh id per event
