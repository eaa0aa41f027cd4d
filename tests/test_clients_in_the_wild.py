"""Clients in the wild, with their own defaults, against Cadence: the openai-agents SDK's
``RealtimeAgent`` + ``RealtimeRunner`` (OpenAI's path, Bearer key) and pipecat's
``InworldRealtimeLLMService`` (Inworld's path, Basic key). Only the URL and the key are
ours; voice, model, turn detection and every session field are what each client sends."""

from __future__ import annotations

import asyncio
import copy
import json

import numpy as np
import pytest
from agents.realtime import RealtimeAgent, RealtimeRunner
from agents.realtime.openai_realtime import DEFAULT_MODEL_SETTINGS, DEFAULT_REALTIME_MODEL
from pipecat.frames.frames import EndFrame, InputAudioRawFrame, LLMRunFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.services.inworld.realtime.llm import InworldRealtimeLLMService
from pipecat.workers.runner import WorkerRunner
from pydantic import SecretStr, ValidationError

from cadence.server import create_app
from cadence.transports.realtime.protocol import parse_client_event
from cadence.transports.realtime.session import RealtimeSession
from servers import serving
from test_realtime_pipecat import RATE, Collector, wait_for_session

KEY = "sk-cadence-clients"
QUESTION = "What is the capital of France?"


class Wire:
    """What crosses Cadence's side of the socket: client events in, server events out."""

    def __init__(self, monkeypatch):
        self.sent: list[dict] = []  # by the client
        self.emitted: list[dict] = []  # by Cadence
        real_handle, real_emit = RealtimeSession.handle, RealtimeSession.emit

        async def handle(session, raw):
            try:
                event = json.loads(raw)
            except (TypeError, ValueError):
                event = {"type": None, "raw": raw}
            if not isinstance(event, dict) or event.get("type") != "input_audio_buffer.append":
                self.sent.append(event if isinstance(event, dict) else {"type": None, "raw": raw})
            await real_handle(session, raw)

        def emit(session, event):
            if event.get("type") not in ("response.output_audio.delta", "response.output_audio_transcript.delta"):
                self.emitted.append(copy.deepcopy(event))
            real_emit(session, event)

        monkeypatch.setattr(RealtimeSession, "handle", handle)
        monkeypatch.setattr(RealtimeSession, "emit", emit)

    def sent_of(self, kind: str) -> list[dict]:
        return [e for e in self.sent if e.get("type") == kind]

    def errors(self) -> list[dict]:
        return [e for e in self.emitted if e.get("type") == "error"]


def with_silence(pcm: np.ndarray, seconds: float = 3.0) -> bytes:
    return np.concatenate([pcm, np.zeros(int(RATE * seconds), dtype=np.int16)]).tobytes()


class AgentEvents:
    """Everything an openai-agents ``RealtimeSession`` hands its app, read in the background."""

    def __init__(self, session):
        self.session = session
        self.events: list = []
        self.raw: list[dict] = []  # the server's events as they came off the wire
        self.errors: list = []  # error events (Cadence's own, or events the SDK could not parse)
        self.history: dict[str, object] = {}
        self.audio: dict[str, int] = {}  # assistant item id -> bytes of reply audio
        self.turns_ended = 0
        self.changed = asyncio.Event()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            await self._take()
        finally:
            self.changed.set()  # a waiter sees the session end

    async def _take(self) -> None:
        async for event in self.session:
            self.events.append(event)
            if event.type == "error":
                self.errors.append(event.error)
            elif event.type == "raw_model_event" and event.data.type == "raw_server_event":
                self.raw.append(event.data.data)
            elif event.type == "audio":
                self.audio[event.item_id] = self.audio.get(event.item_id, 0) + len(event.audio.data)
            elif event.type == "history_updated":
                self.history = {item.item_id: item for item in event.history}
            elif event.type == "history_added":
                self.history[event.item.item_id] = event.item
            elif event.type == "agent_end":
                self.turns_ended += 1
            self.changed.set()

    async def until(self, check, timeout: float = 90) -> None:
        async def wait():
            while not check():
                if self.task.done():
                    self.task.result()  # the SDK's own exception, if it raised one
                    raise AssertionError("the agent session ended")
                self.changed.clear()
                await self.changed.wait()
        try:
            await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"timed out; events: {[e.type for e in self.events][-40:]},"
                                 f" raw: {[e.get('type') for e in self.raw][-40:]}") from None

    def of(self, kind: str) -> list[dict]:
        return [e for e in self.raw if e.get("type") == kind]

    def messages(self, role: str) -> list:
        return [item for item in self.history.values() if getattr(item, "role", None) == role]


def transcript(item) -> str:
    return " ".join((getattr(part, "transcript", None) or getattr(part, "text", None) or "") for part in item.content)


def unparsed_cadence_event(error) -> str | None:
    """The type of a Cadence-only event (``cadence.*``) that the SDK could not parse and so handed
    its app as an ``error`` (its parser knows only OpenAI's server event types)."""
    if isinstance(error, ValidationError):
        for detail in error.errors():
            kind = detail.get("input", {}).get("type", "") if isinstance(detail.get("input"), dict) else ""
            if kind.startswith("cadence."):
                return kind
    return None


async def agent_session(base: str):
    """The openai-agents SDK's realtime agent with its defaults; only the URL and the key are ours."""
    agent = RealtimeAgent(name="Nova", instructions="You are Nova, a warm companion. Answer in one short sentence.")
    return agent, await RealtimeRunner(agent).run(
        model_config={"url": base.replace("http://", "ws://") + "/v1/realtime", "api_key": KEY})


async def speak_to(session, pcm: np.ndarray) -> None:
    """A spoken question in 20 ms chunks, in real time, then silence (the server's turn detection ends it)."""
    audio = with_silence(pcm)
    chunk = RATE // 50 * 2
    for i in range(0, len(audio), chunk):
        await session.send_audio(audio[i:i + chunk])
        await asyncio.sleep(0.02)


async def test_openai_agents_realtime_agent_with_its_defaults(nova_factory, speak, monkeypatch):
    monkeypatch.setattr(nova_factory.config.config.server, "api_keys", [SecretStr(KEY)])
    wire = Wire(monkeypatch)
    async with serving(create_app(nova_factory)) as base:
        agent, session = await agent_session(base)
        async with session:
            seen = AgentEvents(session)
            # On connect the SDK sends its defaults in one session.update, and tracing once session.created came.
            await seen.until(lambda: len(seen.of("session.updated")) >= 2, timeout=30)
            sent = wire.sent_of("session.update")[0]["session"]
            assert sent["model"] == DEFAULT_REALTIME_MODEL and sent["audio"]["output"]["voice"] == "ash"
            assert sent["audio"]["input"]["turn_detection"] == {"type": "semantic_vad", "interrupt_response": True}
            assert sent["audio"]["input"]["transcription"] == {"model": "gpt-4o-mini-transcribe"}
            assert wire.sent_of("session.update")[1]["session"]["tracing"] == "auto"
            echo = seen.of("session.updated")[0]["session"]
            assert echo["audio"]["output"]["voice"] == DEFAULT_MODEL_SETTINGS["voice"] == "ash"
            assert echo["providerData"]["voice"]["voice"] == "en_US-joe-medium"  # what speaks "ash"
            assert echo["audio"]["input"]["turn_detection"]["type"] == "semantic_vad"
            assert echo["audio"]["input"]["turn_detection"]["eagerness"] == "auto"  # the YAML's smart-turn
            assert echo["audio"]["input"]["turn_detection"]["interrupt_response"] is True
            assert echo["audio"]["input"]["transcription"]["model"] == "whisper-tiny.en"  # what runs
            assert echo["output_modalities"] == ["audio"] and echo["instructions"] == agent.instructions
            assert echo["model"] == "local/qwen2.5-coder-0.5b-instruct"  # a name it does not serve: what runs

            await speak_to(session, speak(QUESTION, rate=RATE))
            await seen.until(lambda: seen.turns_ended >= 1)
            await seen.until(lambda: any("france" in transcript(m).lower() for m in seen.messages("user")), 30)
            replies = seen.messages("assistant")
            assert replies and transcript(replies[-1]).strip(), seen.history
            assert seen.audio.get(replies[-1].item_id, 0) > RATE, seen.audio  # > 0.5 s of reply audio
            assert seen.of("response.done")[-1]["response"]["status"] == "completed"

            # A typed message gets its answer too.
            await session.send_message("Now tell me one thing you like about Paris.")
            await seen.until(lambda: seen.turns_ended >= 2)
            await seen.until(lambda: len(seen.messages("assistant")) >= 2
                             and transcript(seen.messages("assistant")[-1]).strip(), 30)
            assert any("paris" in transcript(m).lower() for m in seen.messages("user")), seen.history
            assert seen.of("response.done")[-1]["response"]["status"] == "completed"
            assert seen.audio.get(seen.messages("assistant")[-1].item_id, 0) > RATE
        await asyncio.wait_for(seen.task, 10)
    assert not wire.errors(), wire.errors()  # Cadence refused nothing the SDK sent
    # Nothing reached the app as an error (Cadence-only events, which its parser would turn into
    # errors, come only to sessions that ask for them).
    assert not seen.errors, [unparsed_cadence_event(e) or e for e in seen.errors]


async def test_openai_agents_sdk_gets_no_error_event_from_a_spoken_turn(nova_factory, speak):
    async with serving(create_app(nova_factory)) as base:
        _, session = await agent_session(base)
        async with session:
            seen = AgentEvents(session)
            await seen.until(lambda: len(seen.of("session.updated")) >= 2, timeout=30)
            await speak_to(session, speak(QUESTION, rate=RATE))
            await seen.until(lambda: seen.turns_ended >= 1)
        await asyncio.wait_for(seen.task, 10)
    assert not seen.errors, [unparsed_cadence_event(e) or e for e in seen.errors]


async def test_pipecat_inworld_realtime_service_with_its_default_voice(nova_factory, speak, monkeypatch):
    monkeypatch.setattr(nova_factory.config.config.server, "api_keys", [SecretStr(KEY)])
    wire = Wire(monkeypatch)
    async with serving(create_app(nova_factory)) as base:
        # Only the URL and the key are ours: voice, models, turn detection, modalities are its defaults.
        llm = InworldRealtimeLLMService(api_key=KEY, base_url=base.replace("http://", "ws://") + "/api/v1/realtime/session")
        context = LLMContextAggregatorPair(LLMContext([{"role": "user", "content": "Say hello to me."}]))
        collector = Collector()
        worker = PipelineWorker(
            Pipeline([context.user(), llm, collector, context.assistant()]),
            params=PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE),
            idle_timeout_secs=None, enable_rtvi=False,
        )
        errors: list = []
        failed = asyncio.Event()

        @worker.event_handler("on_pipeline_error")
        async def on_pipeline_error(worker, frame):
            errors.append(frame.error)
            failed.set()

        async def until_spoken(count: int) -> None:
            waiting = asyncio.ensure_future(collector.until_spoken(count))
            erring = asyncio.ensure_future(failed.wait())
            done, pending = await asyncio.wait({waiting, erring}, timeout=90, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            assert not errors, (errors, wire.errors())
            assert waiting in done, f"no spoken reply #{count} within 90 s: {collector.replies}"

        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(worker)
        running = asyncio.create_task(runner.run())
        try:
            await wait_for_session(base)
            # As pipecat's examples start a realtime bot: the first run sets the conversation up (the
            # service sends no audio before it) and the bot speaks first.
            await worker.queue_frame(LLMRunFrame())
            await until_spoken(1)
            pcm = with_silence(speak(QUESTION, rate=RATE))
            for i in range(0, len(pcm), RATE // 25):
                await worker.queue_frame(InputAudioRawFrame(pcm[i:i + RATE // 25], sample_rate=RATE, num_channels=1))
                await asyncio.sleep(0.02)
            await until_spoken(2)
        finally:
            await worker.queue_frame(EndFrame())
            await asyncio.wait_for(running, 30)
    sent = wire.sent_of("session.update")[0]["session"]
    assert sent["audio"]["output"]["voice"] == "Clive" and sent["audio"]["output"]["model"] == "inworld-tts-2"
    assert sent["model"] == "openai/gpt-4.1-mini" and sent["output_modalities"] == ["audio", "text"]
    assert sent["audio"]["input"]["turn_detection"]["eagerness"] == "low"
    assert sent["providerData"] == {"metadata": {"sdk": "pipecat-realtime"}, "auto_tool_response": False}
    echo = [e for e in wire.emitted if e["type"] == "session.updated"][-1]["session"]
    assert echo["audio"]["output"]["voice"] == "Clive" and echo["audio"]["output"]["model"] == "piper"
    assert echo["providerData"]["voice"]["voice"] == "en_US-joe-medium"
    assert echo["providerData"]["metadata"] == {"sdk": "pipecat-realtime"}
    assert echo["output_modalities"] == ["audio"]  # both modalities: audio with its transcript
    assert echo["audio"]["input"]["turn_detection"]["eagerness"] == "low"
    assert echo["model"] == "local/qwen2.5-coder-0.5b-instruct"  # not a router alias: the pipeline's own
    assert echo["audio"]["input"]["transcription"]["model"] == "whisper-tiny.en"
    assert any("france" in (e.get("transcript") or "").lower() for e in wire.emitted
               if e["type"] == "conversation.item.input_audio_transcription.completed"), "no user transcript"
    replies = collector.spoken()
    assert len(replies) >= 2, collector.replies
    assert not any("<|" in r["text"] for r in replies)
    assert not errors and not wire.errors(), (errors, wire.errors())


@pytest.mark.parametrize("event, where", [
    ({"type": "session.update", "session": {"output_modalities": ["audio", "text"]}}, "session"),  # Inworld's
    ({"type": "session.update", "session": {"modalities": ["text", "audio"]}}, "session"),  # the beta default
    ({"type": "response.create", "response": {"modalities": ["text", "audio"]}}, "response"),  # pipecat's Inworld client
    ({"type": "response.create", "response": {"output_modalities": ["audio", "text"]}}, "response"),
])
def test_both_modalities_mean_audio_with_its_transcript(event, where):
    parsed = parse_client_event(copy.deepcopy(event))
    assert getattr(parsed, where).output_modalities == ["audio"]
