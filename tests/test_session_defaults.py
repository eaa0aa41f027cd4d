"""A session that never sends session.update runs what the YAML says, over WebSocket and in
file mode; session.greeting is spoken first. Real models."""

from __future__ import annotations

import asyncio
import json
import textwrap

import pytest
import websockets

from cadence.config import load_config_text, validate
from cadence.pipelines.builder import PipelineFactory
from cadence.server import create_app
from servers import serving

TUNED = textwrap.dedent("""
    session:
      instructions: "You are Nova, a curious roleplay companion. Keep replies short."
      {greeting}
    pipeline:
      - {{type: vad, confidence: 0.61, stop_secs: 0.45}}
      - {{type: turn, threshold: 0.83, stop_secs: 1.9, interruptions: false}}
      - {{type: stt, model: whisper-tiny.en}}
      - {{type: context}}
      - {{type: llm, model: local/smollm2-135m-instruct, max_tokens: 24, seed: 7}}
      - {{type: tts, voice: en_US-joe-medium, speed: 1.25}}
""")


def tuned_factory(store, greeting: str | None = None) -> PipelineFactory:
    text = TUNED.format(greeting=f"greeting: {json.dumps(greeting)}" if greeting else "")
    factory = PipelineFactory(validate(load_config_text(text)), store)
    factory.prepare()
    return factory


def assert_roles_run_the_yaml(roles) -> None:
    vad = roles.vad_analyzer.params
    assert (vad.confidence, vad.stop_secs) == (0.61, 0.45)
    assert (roles.turn_analyzer.threshold, roles.turn_analyzer.stop_secs) == (0.83, 1.9)
    assert roles.turn_start.interruptions is False
    assert roles.tts.speed == pytest.approx(1.25)


async def test_websocket_session_shows_and_applies_the_yaml(store):
    factory = tuned_factory(store)
    app = create_app(factory)
    async with serving(app) as base:
        async with websockets.connect(base.replace("http://", "ws://") + "/v1/realtime?model=cadence") as ws:
            created = json.loads(await ws.recv())
            assert created["type"] == "session.created"
            session = created["session"]
            detection = session["audio"]["input"]["turn_detection"]
            assert detection["threshold"] == 0.61 and detection["silence_duration_ms"] == 450
            assert detection["endOfTurnConfidenceThreshold"] == 0.83 and detection["maxEndOfTurnSilenceMs"] == 1900
            assert detection["interrupt_response"] is False
            assert session["max_output_tokens"] == 24 and session["audio"]["output"]["speed"] == 1.25
            # ...and the running pipeline has those values after the session started
            (live,) = app.state.realtime_sessions
            assert json.loads(await ws.recv())["type"] == "conversation.created"
            await ws.send(json.dumps({"type": "conversation.item.retrieve", "item_id": "nope"}))
            assert json.loads(await ws.recv())["type"] == "error"  # the session has handled a later event
            assert_roles_run_the_yaml(live.pipeline.roles)
            assert live.turn.vad_confidence == 0.61 and live.gate.automatic


async def test_file_mode_runs_the_yaml(store):
    from cadence.transports.file import FileConversation

    factory = tuned_factory(store)
    built = []
    real_build = factory.build
    factory.build = lambda *a, **k: built.append(real_build(*a, **k)) or built[-1]
    result = await FileConversation(factory).run_text(["Hello!"])
    assert result.exchanges and result.exchanges[0].reply
    assert_roles_run_the_yaml(built[0].roles)


async def test_greeting_is_spoken_first_and_remembered(store, monkeypatch):
    greeting = "Hi, I'm Nova. What shall we talk about?"
    factory = tuned_factory(store, greeting=greeting)
    requests = []
    real = factory.router.stream
    monkeypatch.setattr(factory.router, "stream", lambda params: (requests.append(params), real(params))[1])
    async with serving(create_app(factory)) as base:
        async with websockets.connect(base.replace("http://", "ws://") + "/v1/realtime?model=cadence") as ws:
            events = []

            async def until(kind: str) -> dict:
                while True:
                    event = json.loads(await ws.recv())
                    events.append(event)
                    assert event["type"] != "error", event
                    if event["type"] == kind:
                        return event

            done = await asyncio.wait_for(until("response.done"), 60)
            assert [e["type"] for e in events][:2] == ["session.created", "conversation.created"]
            assert done["response"]["status"] == "completed"
            spoken = done["response"]["output"][0]["content"][0]["transcript"]
            assert spoken.strip() == greeting
            assert any(e["type"] == "response.output_audio.delta" for e in events)
            assert not requests  # the greeting is the configured text, not an LLM reply

            await ws.send(json.dumps({"type": "conversation.item.create", "item": {
                "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Tell me a joke."}]}}))
            await ws.send(json.dumps({"type": "response.create", "response": {"output_modalities": ["text"]}}))
            await asyncio.wait_for(until("response.done"), 60)
    assert {"role": "assistant", "content": greeting} in requests[-1]["messages"]


async def test_no_greeting_means_the_server_waits(store):
    factory = tuned_factory(store)
    async with serving(create_app(factory)) as base:
        async with websockets.connect(base.replace("http://", "ws://") + "/v1/realtime?model=cadence") as ws:
            assert json.loads(await ws.recv())["type"] == "session.created"
            assert json.loads(await ws.recv())["type"] == "conversation.created"
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 1.5)


async def test_file_mode_greets_first(store):
    from cadence.transports.file import FileConversation

    greeting = "Hello! I'm Nova."
    result = await FileConversation(tuned_factory(store, greeting=greeting)).run_text(["Hi Nova, how are you?"])
    assert [e.user for e in result.exchanges] == [None, "Hi Nova, how are you?"]
    assert result.exchanges[0].reply == greeting and result.exchanges[1].reply.strip()
    assert len(result.audio) > result.sample_rate  # both were spoken (over a second of audio)


async def test_plugin_llm_and_tts_stages_drive_a_realtime_session(store):
    """Stages of the user's own (here the test doubles) take the llm and tts roles, so their
    replies come out as Realtime responses with audio, as the built-ins' do."""
    text = "pipeline: [{type: context}, {type: 'doubles:InstantLLM'}, {type: 'doubles:InstantTTS'}]"
    factory = PipelineFactory(validate(load_config_text(text)), store)
    async with serving(create_app(factory)) as base:
        async with websockets.connect(base.replace("http://", "ws://") + "/v1/realtime?model=cadence") as ws:
            created = json.loads(await ws.recv())
            assert created["session"]["output_modalities"] == ["audio"]
            assert created["session"]["audio"]["input"]["turn_detection"] is None  # no vad stage
            await ws.send(json.dumps({"type": "conversation.item.create", "item": {
                "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi!"}]}}))
            await ws.send(json.dumps({"type": "response.create"}))
            kinds, done = [], None
            while done is None:
                event = json.loads(await asyncio.wait_for(ws.recv(), 30))
                kinds.append(event["type"])
                if event["type"] == "response.done":
                    done = event["response"]
    assert done["status"] == "completed" and "response.output_audio.delta" in kinds
    assert done["output"][0]["content"][0]["transcript"] == "I hear you, tell me more."
