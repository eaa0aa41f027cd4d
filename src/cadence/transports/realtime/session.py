"""One Realtime connection: client events in, a pipecat pipeline in the middle, server events out.

It translates the protocol and delegates: ``SessionConfig`` (the typed session), ``SettingsApplier``
(settings → pipeline frames; memory), ``Conversation`` (items ↔ context messages), ``ResponseTracker``
(responses, output items), ``InputAudio``. The pipeline reaches it through ``SessionEvents``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from loguru import logger
from pipecat.frames.frames import CancelFrame, Frame
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.transports.base_transport import TransportParams
from pipecat.workers.runner import WorkerRunner

from cadence.pipelines.builder import PipelineFactory, SessionPipeline
from cadence.transports.realtime.apply import SettingsApplier
from cadence.transports.realtime.conversation import Conversation
from cadence.transports.realtime.idle import IdleTimer
from cadence.transports.realtime.input_audio import InputAudio
from cadence.tools.client import ClientTools
from cadence.transports.realtime.item_events import ItemEvents
from cadence.transports.realtime.latency import LatencyReporter
from cadence.transports.realtime.listening import backchannel_event
from cadence.transports.realtime.observer import SessionEvents
from cadence.transports.realtime.out_of_band import OutOfBandResponses
from cadence.transports.realtime.outbox import Closer, Outbox
from cadence.transports.realtime.rate import EventRate
from cadence.transports.realtime.protocol import ProtocolError, decode_message, error_event, new_id, parse_client_event
from cadence.transports.realtime.response_events import ResponseEvents
from cadence.transports.realtime.responses import Response, ResponseTracker
from cadence.transports.realtime.session_config import SessionConfig, SessionDefaults
from cadence.transports.realtime.tool_events import ToolEvents
from cadence.transports.realtime.transport import Media, RealtimeInputTransport, RealtimeOutputTransport, ResponseGate
from cadence.transports.realtime.user_turns import UserTurns
from cadence.transports.realtime.wire_audio import WIRE_RATE, WireAudio


class RealtimeSession(ItemEvents, ResponseEvents, ToolEvents):
    """Protocol state and one pipeline for one connected client."""

    def __init__(self, factory: PipelineFactory, send: Callable[[dict[str, Any]], Awaitable[None]], *,
                 model: str | None, user_id: str | None, media: Media | None = None, close: Closer | None = None):
        self._outbox = Outbox(send, close)
        self._rate = EventRate()
        transport = factory.config.config.transport
        self.gate = ResponseGate()
        if media is None:
            params = TransportParams(audio_in_enabled=True, audio_in_sample_rate=transport.audio_in_sample_rate,
                                     audio_out_enabled=True, audio_out_sample_rate=transport.audio_out_sample_rate)
            media = Media(RealtimeInputTransport(params), RealtimeOutputTransport(params, on_audio=self._on_audio,
                                                                                 on_backchannel=self._on_backchannel), True)
        self.media = media
        self.pipeline: SessionPipeline = factory.build(
            media.transport_in, media.transport_out, instructions=factory.config.config.session.instructions,
            user_id=user_id, after={"context": [self.gate]},
        )
        roles = self.pipeline.roles
        self.defaults = SessionDefaults.from_config(factory.config, roles)
        self.config = SessionConfig.initial(self.defaults, model=model)
        self.turn = self.config.turn_settings(self.defaults)  # once per session.update, not per chunk
        queue = self._queue
        self.conversation = Conversation(roles.llm_context, queue)
        self.responses = ResponseTracker(self.config.output_modalities)
        self.input = InputAudio(transport.audio_in_sample_rate, self._feed, roles.stt, self.responses.replying_since)
        self.tools = ClientTools()
        self.settings = SettingsApplier(roles, queue, self.defaults, factory.router, factory.config.character,
                                        self.tools, factory.tools)
        self.out_of_band = OutOfBandResponses(factory.router, self.emit, self.conversation, user_id)
        self.user_turns = UserTurns(self.conversation, self.emit, lambda: self.heard_ms)
        self._idle = IdleTimer(self._on_idle)
        self._started_at = time.monotonic()
        self.pipeline.task.add_observer(SessionEvents(self, roles, media.transport_out))
        self.pipeline.task.add_observer(LatencyReporter(self.emit, getattr(getattr(factory.router, "metrics", None),
                                                                           "registry", None),
                                                        lambda: self.config.providerData.get("turn_latency") is True))
        self._hook_aggregators()
        self._runner_task: asyncio.Task | None = None
        self._restoring: asyncio.Task | None = None  # the session's settings coming back after a response
        self._held: Callable[[], None] | None = None  # announces a reply once it is real (see UserTurns)

    # -- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Start the pipeline, greet the client with ``session.created``, speak the greeting."""
        self._outbox.start()
        started = asyncio.Event()

        @self.pipeline.task.event_handler("on_pipeline_started")
        async def on_started(task, frame):
            started.set()

        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(self.pipeline.task)
        self._runner_task = asyncio.create_task(runner.run())
        await asyncio.wait_for(started.wait(), timeout=30)  # audio may only flow once it has started
        unreachable = await self.settings.connect_tools()
        await self._apply()
        self.emit({"type": "session.created", "session": self.settings.wire(self.config)})
        for event in unreachable:
            self.emit(event)
        self.emit({"type": "conversation.created", "conversation": {"id": new_id("conv"), "object": "realtime.conversation"}})
        restored: list[dict[str, Any]] = []
        if (window := self.pipeline.roles.context_window) is not None:  # a resumed session's turns come first
            restored = window.take_restored()
            for event in self.conversation.adopt(restored, lambda: new_id("item")):
                self.emit(event)
        if self.defaults.greeting and not restored:  # a resumed conversation goes on; it is not greeted anew
            await self._greet(self.defaults.greeting)

    async def close(self) -> None:
        """Stop the pipeline and flush nothing more to the client."""
        self._idle.cancel()
        await self.input.close()
        await self.out_of_band.close()
        await self.settings.close_tools()
        await self.pipeline.task.queue_frame(CancelFrame())
        if self._runner_task:
            await asyncio.gather(self._runner_task, return_exceptions=True)
        await self._outbox.finish()

    @property
    def busy(self) -> bool:
        """Whether a reply is in progress, asked for or still on its way out (a drain waits for it)."""
        return self.responses.active or self.responses.requested or self._outbox.backlog_bytes > 0

    def emit(self, event: dict[str, Any]) -> None:
        """Queue a server event (in order, never blocking the pipeline)."""
        event.setdefault("event_id", new_id("event"))
        self._outbox.put(event)

    async def _queue(self, frame: Frame) -> None:
        """Queue a frame the client asked for; a barge-in must not drop it on the way (pipecat
        drops interruptible frames still queued when an interruption arrives)."""
        frame.interruptible = False
        await self.pipeline.task.queue_frame(frame)

    async def _apply(self) -> None:
        self.turn = self.config.turn_settings(self.defaults)
        if self.turn.mode is None:  # the client commits from now on: queued audio is theirs to commit
            self.input.hold_queued()
        self.gate.automatic = self.turn.mode is not None and self.turn.create_response
        if (resumption := self.pipeline.roles.resumption) is not None:  # only where a turn is shown with its reply
            resumption.enabled = self.gate.automatic and not self.config.text_only
        self.responses.default_modalities = list(self.config.output_modalities)
        self.settings.apply_character(self.config)
        await self.settings.apply_memory(self.config)
        await self.settings.apply(self.config, self.turn)

    # -- client events -----------------------------------------------------------------

    async def handle(self, raw: str | bytes) -> None:
        """Apply one client message; any mistake becomes an ``error`` event."""
        event_id = None
        try:
            data = decode_message(raw)
            event_id = data.get("event_id") if isinstance(data.get("event_id"), str) else None
            await self._rate.wait(data["type"])
            event = parse_client_event(data)
            handler = getattr(self, "_on_" + data["type"].replace(".", "_"))
            await handler(event, data)
        except ProtocolError as exc:
            self.emit(error_event(exc, event_id))
        except Exception as exc:  # a bug met by one event must not end the session: say so, go on
            logger.exception(f"realtime: handling an event failed: {exc!r}")
            self.emit(error_event(ProtocolError("server_error", f"the server failed on this event: {type(exc).__name__}",
                                                kind="server_error"), event_id))

    async def _on_session_update(self, event, data) -> None:
        config = self.config.merge(data["session"], self.defaults)
        self.settings.check_room(config, instructions=config.instructions, max_tokens=config.max_output_tokens,
                                 where="session")
        self.settings.check_memory(config)
        self.settings.check_tools(config.tools, config.tool_choice, "session")
        self.settings.check_delivery(config.providerData.get("tts"))
        self.config = config
        await self._apply()
        self.emit({"type": "session.updated", "session": self.settings.wire(self.config)})

    async def _on_input_audio_buffer_append(self, event, data) -> None:
        if not self.media.audio_over_events:
            raise ProtocolError("invalid_state", "this session's audio travels on its WebRTC track, not in events")
        await self.input.append(data["audio"], self.config.audio.input.format.type, hold=self.turn.mode is None)

    async def _on_input_audio_buffer_clear(self, event, data) -> None:
        self.input.clear()
        self.emit({"type": "input_audio_buffer.cleared"})

    async def _on_output_audio_buffer_clear(self, event, data) -> None:
        current = self.responses.current
        await self._cancel_response()
        self.emit({"type": "output_audio_buffer.cleared", "response_id": current.id if current else None})

    # -- pipeline events (PipelineHooks) -------------------------------------------------

    def _hook_aggregators(self) -> None:
        roles = self.pipeline.roles

        @roles.user_aggregator.event_handler("on_user_turn_stopped")
        async def on_user_turn_stopped(aggregator, strategy, message):
            defer = self.gate.automatic and not self.config.text_only
            await self.user_turns.transcribed((message.content or "").strip(), defer=defer)

        @roles.assistant_aggregator.event_handler("on_assistant_turn_started")
        async def on_assistant_turn_started(aggregator):
            self.responses.assistant_turn_started()

        @roles.assistant_aggregator.event_handler("on_assistant_turn_stopped")
        async def on_assistant_turn_stopped(aggregator, message):
            response = self.responses.assistant_turn_stopped()
            if response is None:
                return
            if roles.context_window is not None:  # the turn is remembered before it is reported done
                await roles.context_window.turn_saved()
            if response.message is not None:
                await self.conversation.claim_new(response.message.id, "assistant")
            if not response.done:
                if message.interrupted or response.interrupted:
                    self._finish_response(response, "cancelled", reason="turn_detected")
                else:
                    self._finish_response(response, "completed")

    @property
    def heard_ms(self) -> float:
        """How much input audio the session has heard (the client's clock over WebSocket)."""
        if self.media.audio_over_events:
            return self.input.heard_ms
        return (time.monotonic() - self._started_at) * 1000

    def on_speech_started(self, start_secs: float) -> None:
        self._idle.cancel()
        self.user_turns.speech_started(start_secs)

    def on_speech_stopped(self, stop_secs: float) -> None:
        self.user_turns.speech_stopped(stop_secs)

    def on_turn_ended(self) -> None:
        self.user_turns.turn_ended(defer=self.gate.automatic and not self.config.text_only)  # shown with its reply

    def on_turn_resumed(self) -> None:
        """The user went on before the reply was heard: that reply was never real; drop it unseen."""
        self.user_turns.resumed()
        if self._held is not None and self.responses.active:
            # Finished here: the assistant aggregator may never see this reply begin, and an
            # open response would take the next reply's audio.
            self.responses.current.unseen = True
            self.responses.current.finish("cancelled", "turn_detected")
        self._held = None

    def on_response_started(self) -> None:
        self._idle.cancel()
        response = self.responses.start(new_id("resp"))
        output = response.add_message(new_id("item"))

        def announce() -> None:  # the reply's item comes after the user item it answers (its events with its words)
            output.previous = self.conversation.add(output.item(), output)
            self.conversation.expect(output.id)
            self.emit({"type": "response.created", "response": response.resource()})

        if self.user_turns.deferred:  # a reply to a spoken turn is shown once it is real
            self._held = announce
        else:
            announce()

    def _release(self, response: Response | None = None) -> None:
        """The reply is real (audio, text, or its end): its user item, then the reply itself.
        Output of an older reply (``response``, still playing) releases nothing."""
        if response is not None and response is not self.responses.current:
            return
        if (item_id := self.user_turns.release()) is not None:
            asyncio.get_running_loop().create_task(self.conversation.claim_new(item_id, "user"))
        held, self._held = self._held, None
        if held is not None:
            held()

    def on_llm_text(self, text: str) -> None:
        response = self.responses.current
        if response and not response.done and response.text_only and not response.unseen and response.message:
            self._release()
            self._emit_all([*response.message.opening(), response.message.text_delta(text)])

    def on_spoken_text(self, text: str) -> None:
        response = self.responses.speaking
        if response and response.message and not response.unseen:
            self._release(response)
            self._emit_all([*response.message.opening(), response.message.transcript_delta(text)])

    def on_service_error(self, role: str, message: str) -> None:
        """A service failed: the response it was making fails loudly, and the session goes on."""
        code = f"{role}_failed"
        response = self.responses.current if role == "llm" else self.responses.speaking
        event = {"type": "server_error", "code": code, "message": f"the {role} stage failed: {message}"}
        self.emit({"type": "error", "error": {**event, "param": None, "event_id": None}})
        if role == "llm" and not self.responses.active:
            # The request failed before its reply began (e.g. the user's memory could not be
            # read): the turn still gets a response, and it says how the turn ended.
            self._idle.cancel()
            self._release()  # the turn's user item first
            response = self.responses.start(new_id("resp"))
            self.emit({"type": "response.created", "response": response.resource()})
        if role in ("llm", "tts") and response is not None and not response.done:  # a reply's own service
            self._finish_response(response, "failed", error=event)
            if role == "tts":  # the failed reply's other sentences go too: they would fail the next reply
                asyncio.get_running_loop().create_task(self.media.transport_in.broadcast_interruption())

    def on_interruption(self) -> None:
        if self.responses.active:
            self.responses.current.interrupted = True

    def on_usage(self, usage: Any) -> None:
        if self.responses.active:
            self.responses.current.usage = usage

    def on_audio_played(self, duration_ms: float) -> None:
        response = self.responses.speaking
        if not self.media.audio_over_events and response and response.message:
            response.message.audio_ms += duration_ms

    def on_output_started(self) -> None:
        self._release()
        if not self.media.audio_over_events:
            self.emit({"type": "output_audio_buffer.started", "response_id": self._current_id()})

    def on_output_stopped(self) -> None:
        if not self.media.audio_over_events:
            self.emit({"type": "output_audio_buffer.stopped", "response_id": self._current_id()})

    async def _on_audio(self, pcm: bytes) -> None:
        response = self.responses.speaking
        if response is None or response.message is None or response.unseen:
            return  # (an unseen reply's last audio, still on its way out when the user went on)
        self._release(response)
        wire = await self.input.wire.encode(pcm, self.config.audio.output.format.type)
        self._emit_all([*response.message.opening(), response.message.audio_delta(wire, len(pcm) / 2 / WIRE_RATE * 1000)])

    async def _on_backchannel(self, frame: Any) -> None:
        kind = self.config.audio.output.format.type
        # G.711 resamples: an encoder of its own, or a resampler shared with replies would carry
        # one's tail into the other. audio/pcm goes out as it is.
        wire = frame.audio if kind == "audio/pcm" else await WireAudio().encode(frame.audio, kind)
        self.emit(backchannel_event(frame, wire))

    async def _feed(self, pcm: bytes) -> None:
        await self.media.transport_in.feed(pcm)  # type: ignore[attr-defined]

    # -- helpers -----------------------------------------------------------------------

    def _emit_all(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            self.emit(event)

    def _current_id(self) -> str | None:
        return self.responses.current.id if self.responses.current else None

    def _finish_response(self, response: Response, status: str, reason: str | None = None,
                         error: dict[str, Any] | None = None) -> None:
        response.finish(status, reason, error)
        if response.unseen:  # dropped before it was real: the client never hears of it
            for output in response.output:
                self.conversation.forget(output.id)
            return
        self._release()
        for output in response.output:
            deleted = output.id not in self.conversation.items  # the client deleted it meanwhile
            self._emit_all(getattr(output, "opening", list)())  # a reply that said nothing: announced now
            if not deleted:
                self.conversation.add(output.item(), output)
            for event in output.done_events(self.conversation.previous_of(output.id)):
                if not (deleted and event["type"] == "conversation.item.done"):
                    self.emit(event)
        self.emit({"type": "response.done", "response": response.resource()})
        self.conversation.prune()  # turns folded into memory leave the live conversation
        self._idle.start(self.turn.idle_timeout_ms, self.heard_ms)
        options = response.options
        if options.overrides or options.voice or options.tts or response.modalities != self.config.output_modalities:
            # The response had settings of its own: the session's come back for the next one.
            self._restoring = asyncio.get_running_loop().create_task(self._apply())

    async def _cancel_response(self) -> None:
        if self.responses.active:
            await self.media.transport_in.broadcast_interruption()  # type: ignore[attr-defined]
            self._finish_response(self.responses.current, "cancelled", reason="client_cancelled")

    def _on_idle(self, since_ms: float) -> None:
        self.emit({"type": "input_audio_buffer.timeout_triggered", "audio_start_ms": int(since_ms),
                   "audio_end_ms": int(self.heard_ms), "item_id": new_id("item")})
