"""The Realtime protocol with the official openai SDK as the client, on the real embedded stack."""

from __future__ import annotations

import asyncio
import base64
import json
import typing

import numpy as np
import pytest
import websockets
from openai import AsyncOpenAI
from openai.types.realtime.realtime_server_event import RealtimeServerEvent

from cadence.server import create_app
from conftest import word_error_rate
from servers import serving

SERVER_EVENT_TYPES = {
    typing.get_args(cls.model_fields["type"].annotation)[0]: cls
    for cls in typing.get_args(typing.get_args(RealtimeServerEvent)[0])
}


class _ServerEvents:
    """Validates a server event against the openai SDK's class for its type (strict schema check)."""

    @staticmethod
    def validate_python(event: dict) -> None:
        if str(event.get("type", "")).startswith("cadence."):  # Cadence's own, documented extension events
            assert set(event) >= {"type", "event_id"}, event
            return
        cls = SERVER_EVENT_TYPES.get(event.get("type"))
        assert cls is not None, f"not an OpenAI Realtime server event type: {event.get('type')!r}"
        cls.model_validate(event)


SERVER_EVENTS = _ServerEvents()
RATE = 24000


@pytest.fixture
async def url(nova_factory):
    async with serving(create_app(nova_factory)) as base:
        yield base.replace("http://", "ws://")


def client(url: str) -> AsyncOpenAI:
    return AsyncOpenAI(api_key="unused", websocket_base_url=f"{url}/v1")


async def collect(conn, until: str = "response.done", timeout: float = 60) -> list:
    """Events up to and including the first of type ``until``; each checked against the SDK's schema."""
    events = []

    async def read():
        async for event in conn:
            raw = event.model_dump(exclude_unset=True)
            SERVER_EVENTS.validate_python(raw)  # strict: our event must fit OpenAI's own types
            assert raw.get("event_id"), raw
            events.append(event)
            if event.type == until:
                return
            assert event.type != "error", f"unexpected error while waiting for {until}: {raw}"

    try:
        await asyncio.wait_for(read(), timeout)
    except TimeoutError:
        raise AssertionError(f"no {until} within {timeout}s; got {[e.type for e in events]}") from None
    return events


async def stream_audio(conn, pcm: np.ndarray, pace: float = 1.0) -> None:
    chunk = RATE // 50
    for i in range(0, len(pcm), chunk):
        await conn.send({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm[i:i + chunk].tobytes()).decode()})
        await asyncio.sleep(0.02 / pace)


def spy_on_router(factory, monkeypatch) -> list:
    """Record every request the session's LLM stage sends to the router."""
    requests = []
    real = factory.router.stream
    monkeypatch.setattr(factory.router, "stream", lambda params: (requests.append(params), real(params))[1])
    return requests


async def text_turn(conn, text: str) -> list:
    """Add a typed user message, ask for a text response, return its events."""
    await conn.send({"type": "conversation.item.create", "item": {
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}})
    await conn.send({"type": "response.create", "response": {"output_modalities": ["text"]}})
    return await collect(conn)


def of(events, kind: str) -> list:
    return [e for e in events if e.type == kind]


async def test_spoken_turn_with_the_openai_sdk(url, speak, transcribe):
    question = "What is the capital of France?"
    audio = np.concatenate([speak(question, rate=RATE), np.zeros(RATE * 2, dtype=np.int16)])
    async with client(url).realtime.connect(model="cadence") as conn:
        created = await collect(conn, until="session.created")
        assert created[-1].session.audio.output.voice == "en_US-joe-medium"
        sender = asyncio.create_task(stream_audio(conn, audio))
        events = await collect(conn)
        sender.cancel()

    started = of(events, "input_audio_buffer.speech_started")[0]
    committed = of(events, "input_audio_buffer.committed")[0]
    transcript = of(events, "conversation.item.input_audio_transcription.completed")[0]
    assert started.item_id == committed.item_id == transcript.item_id
    assert word_error_rate(question, transcript.transcript) <= 0.2, transcript.transcript

    done = of(events, "response.done")[0].response
    assert done.status == "completed" and of(events, "response.created")[0].response.id == done.id
    item_id = done.output[0].id
    deltas = of(events, "response.output_audio.delta")
    assert deltas and all(d.item_id == item_id and d.response_id == done.id for d in deltas)
    reply = of(events, "response.output_audio_transcript.done")[0].transcript
    assert reply.strip() and "<|" not in reply
    assert "".join(d.delta for d in of(events, "response.output_audio_transcript.delta")) == reply
    pcm = np.frombuffer(b"".join(base64.b64decode(d.delta) for d in deltas), dtype=np.int16)
    assert np.sqrt(np.mean(pcm.astype(np.float64) ** 2)) > 300
    assert word_error_rate(reply, transcribe(pcm, RATE)) <= 0.5


async def test_text_turn_with_the_openai_sdk(url):
    async with client(url).realtime.connect(model="cadence") as conn:
        await collect(conn, until="session.created")
        events = await text_turn(conn, "Say hello to me!")
    added = of(events, "conversation.item.added")
    assert added[0].item.role == "user" and added[1].item.role == "assistant"
    text = of(events, "response.output_text.done")[0].text
    assert text.strip() and "".join(d.delta for d in of(events, "response.output_text.delta")) == text
    assert not of(events, "response.output_audio.delta")
    assert of(events, "response.done")[0].response.output[0].content[0].text == text


async def test_session_update_applies_and_echoes(url, nova_factory, monkeypatch):
    requests = spy_on_router(nova_factory, monkeypatch)
    async with client(url).realtime.connect(model="cadence") as conn:
        await collect(conn, until="session.created")
        await conn.send({"type": "session.update", "session": {
            "type": "realtime", "instructions": "You are Captain Mira of the starship Meridian.",
            "audio": {"input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 300,
                                                   "endOfTurnConfidenceThreshold": 0.7}}},
            "providerData": {"memory": {"auto_summarize": True}, "stt": {"vadThreshold": 0.6}},
        }})
        updated = (await collect(conn, until="session.updated"))[-1].session
        assert updated.instructions.startswith("You are Captain Mira")
        assert updated.audio.input.turn_detection.silence_duration_ms == 300
        extra = updated.model_extra["providerData"]
        state = extra["memory"].pop("state")
        assert extra["memory"] == {"auto_summarize": True} and extra["unsupported"] == []
        assert state == {"user": None, "persistent": False, "resumed": False, "facts": 0, "pinned_facts": 0,
                         "summary_chars": 0, "summaries": 0, "store_errors": 0}
        await conn.send({"type": "session.update", "session": {"providerData": {"stt": {"inactivityTimeoutSeconds": 9}}}})
        again = (await collect(conn, until="session.updated"))[-1].session.model_extra["providerData"]
        assert again["stt"] == {"vadThreshold": 0.6, "inactivityTimeoutSeconds": 9}  # merged, not replaced
        await text_turn(conn, "Who are you?")
    assert requests[-1]["messages"][0] == {"role": "system", "content": "You are Captain Mira of the starship Meridian."}


async def test_bad_input_gets_errors_and_the_session_keeps_working(url):
    async with websockets.connect(f"{url}/v1/realtime?model=cadence") as ws:
        async def send_raw(message) -> dict:
            await ws.send(message)
            while True:
                event = json.loads(await ws.recv())
                SERVER_EVENTS.validate_python(event)
                if event["type"] == "error":
                    return event["error"]

        assert json.loads(await ws.recv())["type"] == "session.created"
        cases = [
            ("{not json", "invalid_json", None),
            (json.dumps({"type": "input_audio_buffer.explode", "event_id": "e1"}), "unknown_event", "type"),
            (json.dumps({"type": "input_audio_buffer.append", "audio": 42, "event_id": "e2"}), "invalid_value", "audio"),
            (json.dumps({"type": "input_audio_buffer.append", "audio": "%%%not-base64", "event_id": "e3"}),
             "invalid_audio", "audio"),
            (json.dumps({"type": "session.update", "session": {"type": "realtime", "voiceId": "joe"}, "event_id": "e4"}),
             "unsupported_field", "session.voiceId"),
            (json.dumps({"type": "session.update", "session": {"type": "realtime", "audio": {"output": {"voice": "no-such-voice"}}},
                         "event_id": "e5"}), "invalid_value", "session.audio.output.voice"),
            ("x" * (5 * 1024 * 1024), "message_too_large", None),
            (json.dumps({"type": "conversation.item.retrieve", "item_id": "item_nope", "event_id": "e6"}),
             "item_not_found", "item_id"),
        ]
        for message, code, param in cases:
            error = await send_raw(message)
            assert error["code"] == code, (message[:80], error)
            assert error["param"] == param and error["message"] and error["type"]
            if message.startswith("{\"") and "event_id" in message:
                assert error["event_id"] == json.loads(message)["event_id"]
        assert "audio.output.voice" in (await send_raw(json.dumps(
            {"type": "session.update", "session": {"audio": {"output": {"voiceId": "x"}}}})))["message"]

        # ...and the next valid turn still works
        await ws.send(json.dumps({"type": "conversation.item.create", "item": {
            "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello!"}]}}))
        await ws.send(json.dumps({"type": "response.create", "response": {"output_modalities": ["text"]}}))
        while (event := json.loads(await ws.recv()))["type"] != "response.done":
            pass
        assert event["response"]["status"] == "completed" and event["response"]["output"][0]["content"][0]["text"]


async def test_manual_commit_without_turn_detection(url, speak):
    async with client(url).realtime.connect(model="cadence") as conn:
        await collect(conn, until="session.created")
        await conn.send({"type": "session.update", "session": {"type": "realtime", "audio": {
            "input": {"turn_detection": None}}}})
        await collect(conn, until="session.updated")
        await stream_audio(conn, speak("Tell me about the moon.", rate=RATE), pace=4)
        await conn.send({"type": "input_audio_buffer.commit"})
        events = await collect(conn, until="conversation.item.input_audio_transcription.completed")
        assert not of(events, "input_audio_buffer.speech_started")  # the server did not detect turns
        assert word_error_rate("Tell me about the moon.", events[-1].transcript) <= 0.2
        await conn.send({"type": "response.create"})
        events = await collect(conn)
    assert of(events, "response.output_audio.delta") and of(events, "response.done")[0].response.status == "completed"


async def test_cancel_and_truncate(url, nova_factory, monkeypatch):
    requests = spy_on_router(nova_factory, monkeypatch)
    async with client(url).realtime.connect(model="cadence") as conn:
        await collect(conn, until="session.created")
        await conn.send({"type": "conversation.item.create", "item": {
            "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Tell me a long story."}]}})
        await conn.send({"type": "response.create"})
        await collect(conn, until="response.created")
        await conn.send({"type": "response.cancel"})
        events = await collect(conn)
        assert events[-1].response.status == "cancelled"
        assert events[-1].response.status_details.reason == "client_cancelled"

        await conn.send({"type": "response.create"})
        events = await collect(conn)
        done = events[-1].response
        item_id, full = done.output[0].id, of(events, "response.output_audio_transcript.done")[0].transcript
        played_ms = 700
        await conn.send({"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0,
                         "audio_end_ms": played_ms})
        truncated = (await collect(conn, until="conversation.item.truncated"))[-1]
        assert truncated.item_id == item_id and truncated.audio_end_ms == played_ms
        await conn.send({"type": "conversation.item.retrieve", "item_id": item_id})
        kept = (await collect(conn, until="conversation.item.retrieved"))[-1].item.content[0].transcript
        assert len(kept) < len(full) and full.startswith(kept)
        await conn.send({"type": "response.create", "response": {"output_modalities": ["text"]}})
        await collect(conn)
        assistant = [m["content"] for m in requests[-1]["messages"] if m["role"] == "assistant"]
        assert kept in assistant and full not in assistant  # the model remembers only what was heard

        await conn.send({"type": "conversation.item.delete", "item_id": item_id})
        assert (await collect(conn, until="conversation.item.deleted"))[-1].item_id == item_id
        await conn.send({"type": "response.create", "response": {"output_modalities": ["text"]}})
        await collect(conn)
        assert kept not in [m["content"] for m in requests[-1]["messages"] if m["role"] == "assistant"]


async def test_inworld_path_and_concurrent_sessions_stay_isolated(url, nova_factory, monkeypatch):
    requests = spy_on_router(nova_factory, monkeypatch)

    async def chat(path: str, instructions: str, text: str) -> tuple[str, list]:
        async with websockets.connect(f"{url}{path}") as ws:
            events = [json.loads(await ws.recv())]
            await ws.send(json.dumps({"type": "session.update", "session": {"instructions": instructions,
                                                                           "output_modalities": ["text"]}}))
            await ws.send(json.dumps({"type": "conversation.item.create", "item": {
                "type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}}))
            await ws.send(json.dumps({"type": "response.create"}))
            while (event := json.loads(await ws.recv()))["type"] != "response.done":
                events.append(event)
            return event["response"]["output"][0]["content"][0]["text"], events

    (a, events_a), (b, events_b) = await asyncio.gather(
        chat("/v1/realtime?model=cadence", "You are Ada.", "Hi Ada, I keep bees."),
        chat("/api/v1/realtime/session?key=s-1&user=user-b&protocol=realtime", "You are Bob.", "Hi Bob, I fly kites."),
    )
    assert a.strip() and b.strip()
    # Each session's LLM saw its own persona and its own user's words, never the other's.
    by_persona = {r["messages"][0]["content"]: r["messages"] for r in requests}
    assert set(by_persona) == {"You are Ada.", "You are Bob."}, list(by_persona)
    ada, bob = json.dumps(by_persona["You are Ada."]), json.dumps(by_persona["You are Bob."])
    assert "bees" in ada and "kites" not in ada and "kites" in bob and "bees" not in bob
    assert events_a[0]["session"]["id"] != events_b[0]["session"]["id"]
    assert {r.get("user") for r in requests} == {"user", "user-b"}  # sticky keys: the default user and the named one


async def test_keys_are_checked_before_the_upgrade(nova_factory, monkeypatch):
    from pydantic import SecretStr

    monkeypatch.setattr(nova_factory.config.config.server, "api_keys", [SecretStr("sekret")])
    async with serving(create_app(nova_factory)) as base:
        ws_url = base.replace("http://", "ws://") + "/v1/realtime?model=cadence"
        with pytest.raises(websockets.exceptions.InvalidStatus) as info:
            async with websockets.connect(ws_url):
                pass
        assert info.value.response.status_code == 401
        for header in ("Bearer sekret", "Basic sekret"):
            async with websockets.connect(ws_url, additional_headers={"Authorization": header}) as ws:
                assert json.loads(await ws.recv())["type"] == "session.created"


@pytest.mark.parametrize("interrupt", [True, False])
async def test_barge_in_cancels_the_response_in_progress(url, speak, interrupt):
    async with client(url).realtime.connect(model="cadence") as conn:
        await collect(conn, until="session.created")
        await conn.send({"type": "session.update", "session": {
            "type": "realtime", "max_output_tokens": 400,
            # the reply must still be playing when the user speaks: a storyteller, not a one-liner
            "instructions": "You are a storyteller. Tell long, detailed stories of many sentences.",
            "audio": {"input": {"turn_detection": {"type": "server_vad", "interrupt_response": interrupt}}}}})
        await collect(conn, until="session.updated")
        await conn.send({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "Tell me a very long story about a dragon and a knight, with many details."}]}})
        await conn.send({"type": "response.create"})
        await collect(conn, until="response.created")
        interruption = np.concatenate([speak("Wait, stop please.", rate=RATE), np.zeros(RATE, dtype=np.int16)])
        sender = asyncio.create_task(stream_audio(conn, interruption))
        events = await collect(conn, until="response.done")
        sender.cancel()
    assert of(events, "input_audio_buffer.speech_started"), [e.type for e in events]
    if interrupt:
        assert events[-1].response.status == "cancelled"
        assert events[-1].response.status_details.reason == "turn_detected"
    else:  # interrupt_response: false — the user is heard, the reply goes on
        assert events[-1].response.status == "completed"


async def spoken_turn_timing(url, speak, turn_detection: dict, provider_stt: dict | None = None) -> tuple[list, float]:
    """Speak one question with these settings; (events, seconds from speech_stopped to committed)."""
    audio = np.concatenate([speak("What is the capital of France?", rate=RATE), np.zeros(RATE * 5, dtype=np.int16)])
    session = {"type": "realtime", "audio": {"input": {"turn_detection": turn_detection}}}
    if provider_stt:
        session["providerData"] = {"stt": provider_stt}
    async with client(url).realtime.connect(model="cadence") as conn:
        await collect(conn, until="session.created")
        await conn.send({"type": "session.update", "session": session})
        await collect(conn, until="session.updated")
        sender = asyncio.create_task(stream_audio(conn, audio))
        events, stamps = [], {}
        try:
            async def read():
                async for event in conn:
                    events.append(event)
                    stamps.setdefault(event.type, asyncio.get_running_loop().time())
                    if event.type == "input_audio_buffer.committed":
                        return
            await asyncio.wait_for(read(), 12)
        except TimeoutError:
            pass
        sender.cancel()
    if "input_audio_buffer.committed" not in stamps:
        return events, float("inf")
    return events, stamps["input_audio_buffer.committed"] - stamps["input_audio_buffer.speech_stopped"]


async def test_end_of_turn_confidence_threshold_changes_when_the_turn_ends(url, speak):
    _, eager = await spoken_turn_timing(url, speak, {"type": "server_vad", "endOfTurnConfidenceThreshold": 0.0})
    _, never = await spoken_turn_timing(url, speak, {"type": "server_vad"}, {"endOfTurnConfidenceThreshold": 1.0})
    # The item is committed with its reply's first audio (a turn may still resume until then),
    # so both include the reply's latency; the threshold moves the turn's end by the longest wait.
    assert eager < 2.5, eager  # confident at once: the turn ends as soon as VAD hears silence
    assert never > eager + 2.0, (eager, never)  # never confident: only the longest wait (3 s) ends the turn


async def test_vad_threshold_changes_what_counts_as_speech(url, speak):
    deaf, _ = await spoken_turn_timing(url, speak, {"type": "server_vad"}, {"vadThreshold": 1.0})
    assert not [e for e in deaf if e.type == "input_audio_buffer.speech_started"]
    heard, _ = await spoken_turn_timing(url, speak, {"type": "server_vad", "threshold": 0.5})
    assert [e for e in heard if e.type == "input_audio_buffer.speech_started"]


@pytest.mark.parametrize("setting", [{"idle_timeout_ms": 600}, {"inactivityTimeoutSeconds": 0.6}])
async def test_idle_timeout_is_reported(url, setting):
    detection = {"type": "server_vad", **({"idle_timeout_ms": 600} if "idle_timeout_ms" in setting else {})}
    session = {"type": "realtime", "audio": {"input": {"turn_detection": detection}}}
    if "inactivityTimeoutSeconds" in setting:
        session["providerData"] = {"stt": setting}
    async with client(url).realtime.connect(model="cadence") as conn:
        await collect(conn, until="session.created")
        await conn.send({"type": "session.update", "session": session})
        await collect(conn, until="session.updated")
        await text_turn(conn, "Hi!")
        start = asyncio.get_running_loop().time()
        await collect(conn, until="input_audio_buffer.timeout_triggered", timeout=5)
        assert 0.5 < asyncio.get_running_loop().time() - start < 3


async def test_session_model_routes_and_transcription_settings_are_truthful(url, nova_factory, monkeypatch):
    requests = spy_on_router(nova_factory, monkeypatch)
    async with client(url).realtime.connect(model="gpt-realtime") as conn:
        created = (await collect(conn, until="session.created"))[-1].session
        assert created.model == "local/qwen2.5-coder-0.5b-instruct"  # not a router model: the pipeline's own is used
        await conn.send({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
            "transcription": {"model": "whisper-1", "prompt": "Nova, Meridian"}}}}})
        updated = (await collect(conn, until="session.updated"))[-1].session
        assert updated.audio.input.transcription.model == "whisper-tiny.en"
        assert updated.audio.input.transcription.prompt == "Nova, Meridian"
        await conn.send({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
            "transcription": {"language": "fr"}}}}})
        error = (await collect(conn, until="error"))[-1].error
        assert error.param == "session.audio.input.transcription.language"
        await conn.send({"type": "session.update", "session": {"type": "realtime", "model": "local/qwen2.5-coder-0.5b-instruct"}})
        await collect(conn, until="session.updated")
        await text_turn(conn, "Hi")
    assert requests[-1]["model"] == "local/qwen2.5-coder-0.5b-instruct"


async def test_create_response_false_waits_for_response_create(url, speak):
    audio = np.concatenate([speak("What is the capital of France?", rate=RATE), np.zeros(RATE * 4, dtype=np.int16)])
    async with client(url).realtime.connect(model="cadence") as conn:
        await collect(conn, until="session.created")
        await conn.send({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
            "turn_detection": {"type": "server_vad", "create_response": False, "interrupt_response": False}}}}})
        await collect(conn, until="session.updated")
        sender = asyncio.create_task(stream_audio(conn, audio))
        events = await collect(conn, until="conversation.item.input_audio_transcription.completed")
        await sender
        assert not of(events, "response.created")
        with pytest.raises(AssertionError, match="no response.created"):
            await collect(conn, until="response.created", timeout=2)  # nothing starts by itself
        await conn.send({"type": "response.create"})
        events = await collect(conn)
    assert events[-1].response.status == "completed" and of(events, "response.output_audio.delta")


async def test_response_create_options_apply_to_that_response_only(url, nova_factory, monkeypatch):
    requests = spy_on_router(nova_factory, monkeypatch)
    async with client(url).realtime.connect(model="cadence") as conn:
        await collect(conn, until="session.created")
        await conn.send({"type": "conversation.item.create", "item": {
            "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello!"}]}})
        await conn.send({"type": "response.create", "response": {
            "output_modalities": ["text"], "instructions": "Answer in one word.", "max_output_tokens": 5}})
        await collect(conn)
        await conn.send({"type": "response.create", "response": {"output_modalities": ["text"]}})
        await collect(conn)
    assert requests[-2]["messages"][0]["content"] == "Answer in one word." and requests[-2]["max_tokens"] == 5
    assert requests[-1]["messages"][0]["content"].startswith("You are Nova") and requests[-1]["max_tokens"] == 60


async def test_g711_audio_in_and_out(url, speak, transcribe):
    import audioop

    question = "What is the capital of France?"
    pcm8k = np.concatenate([speak(question, rate=8000), np.zeros(8000 * 3, dtype=np.int16)])
    ulaw = audioop.lin2ulaw(pcm8k.tobytes(), 2)
    async with client(url).realtime.connect(model="cadence") as conn:
        await collect(conn, until="session.created")
        await conn.send({"type": "session.update", "session": {"type": "realtime", "audio": {
            "input": {"format": {"type": "audio/pcmu"}}, "output": {"format": {"type": "audio/pcmu"}}}}})
        await collect(conn, until="session.updated")

        async def send():
            for i in range(0, len(ulaw), 160):  # 20 ms of 8 kHz µ-law
                await conn.send({"type": "input_audio_buffer.append", "audio": base64.b64encode(ulaw[i:i + 160]).decode()})
                await asyncio.sleep(0.02)

        sender = asyncio.create_task(send())
        events = await collect(conn)
        sender.cancel()
    heard = of(events, "conversation.item.input_audio_transcription.completed")[0].transcript
    assert word_error_rate(question, heard) <= 0.2, heard
    reply = b"".join(base64.b64decode(d.delta) for d in of(events, "response.output_audio.delta"))
    pcm = np.frombuffer(audioop.ulaw2lin(reply, 2), dtype=np.int16)  # one byte per 8 kHz sample
    said = of(events, "response.output_audio_transcript.done")[0].transcript
    assert word_error_rate(said, transcribe(pcm, 8000)) <= 0.5
