"""One Realtime connection: client events in, a pipecat pipeline in the middle, server events out.

Client events are applied to the pipeline (audio, context messages, settings, response
requests); what the pipeline does is watched by an observer and by the context
aggregators' events, and reported with consistent item and response ids.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from collections.abc import Awaitable, Callable
from typing import Any

from loguru import logger
from pipecat.audio.utils import create_stream_resampler
from pipecat.frames.frames import (
    CancelFrame,
    LLMConfigureOutputFrame,
    LLMMessagesAppendFrame,
    LLMRunFrame,
    LLMUpdateSettingsFrame,
)
from pipecat.services.settings import LLMSettings
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.transports.base_transport import TransportParams
from pipecat.workers.runner import WorkerRunner

from cadence.pipelines.builder import PipelineFactory, SessionPipeline
from cadence.transports.realtime.protocol import (
    ProtocolError,
    decode_audio,
    decode_message,
    error_event,
    new_id,
    parse_client_event,
)
from cadence.transports.realtime.apply import apply_session
from cadence.transports.realtime.observer import SessionEvents
from cadence.transports.realtime.responses import Response
from cadence.transports.realtime.session_state import default_session, merge_session, new_session_id, turn_settings
from cadence.transports.realtime.transport import RealtimeInputTransport, RealtimeOutputTransport, ResponseGate
from cadence.transports.realtime.wire_audio import WIRE_RATE, WireAudio

MAX_AHEAD_MS = 10_000  # how far ahead of real time a client may send audio


@dataclass
class Media:
    """How audio travels: as events (WebSocket) or on media tracks (WebRTC)."""

    transport_in: FrameProcessor
    transport_out: FrameProcessor
    audio_over_events: bool


class RealtimeSession:
    """Protocol state and one pipeline for one connected client."""

    def __init__(self, factory: PipelineFactory, send: Callable[[dict[str, Any]], Awaitable[None]], *,
                 model: str | None, user_id: str | None, media: Media | None = None):
        self.factory = factory
        self._send = send
        self._outbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        config = factory.config.config
        stages = {s.spec.name: s.params for s in factory.config.stages}
        self.in_rate = config.transport.audio_in_sample_rate
        self.voices = [stages["tts"].voice] if "tts" in stages else []
        self.state = default_session(
            session_id=new_session_id(), model=model or getattr(stages.get("llm"), "model", "cadence"),
            instructions=config.session.instructions, voice=self.voices[0] if self.voices else "none",
            stt_model=getattr(stages.get("stt"), "model", "none"),
            vad_stop_secs=getattr(stages.get("vad"), "stop_secs", 0.2),
            turn_threshold=getattr(stages.get("turn"), "threshold", 0.5),
        )
        # Computed once per session.update, not per 20 ms of appended audio.
        self.turn = turn_settings(self.state)
        self.default_max_tokens = getattr(stages.get("llm"), "max_tokens", 256)
        self.default_model = getattr(stages.get("llm"), "model", None)
        self.stt_params = stages.get("stt")
        self.items: dict[str, dict[str, Any]] = {}
        self.user_item: str | None = None  # the user audio item being spoken
        self.committed: set[str] = set()
        self.response: Response | None = None
        self.responses: dict[str, Response] = {}  # by assistant item id
        self._next_modalities: list[str] | None = None  # set by response.create for the next response
        self._restore_settings = False
        self.input_ms = 0.0  # audio received so far (client clock)
        self._first_audio_at: float | None = None
        self._buffer = bytearray()  # input audio held for a manual commit (turn_detection: null)
        self._resample_in = create_stream_resampler()  # 24 kHz wire audio → the pipeline's input rate
        self.wire = WireAudio()
        self._idle_task: asyncio.Task | None = None
        self.gate = ResponseGate()
        if media is None:
            params = TransportParams(audio_in_enabled=True, audio_in_sample_rate=self.in_rate, audio_out_enabled=True,
                                     audio_out_sample_rate=config.transport.audio_out_sample_rate)
            media = Media(RealtimeInputTransport(params), RealtimeOutputTransport(params, on_audio=self._on_audio), True)
        self.media = media
        self.transport_in, self.transport_out = media.transport_in, media.transport_out
        self._started_at = time.monotonic()
        self.pipeline: SessionPipeline = factory.build(
            self.transport_in, self.transport_out, instructions=config.session.instructions,
            user_id=user_id, after={"context": [self.gate]},
        )
        self.pipeline.task.add_observer(SessionEvents(self))
        self._hook_aggregators()
        self._runner_task: asyncio.Task | None = None
        self._writer_task: asyncio.Task | None = None

    # -- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Start the pipeline and greet the client with ``session.created``."""
        self._writer_task = asyncio.create_task(self._writer())
        started = asyncio.Event()

        @self.pipeline.task.event_handler("on_pipeline_started")
        async def on_started(task, frame):
            started.set()

        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(self.pipeline.task)
        self._runner_task = asyncio.create_task(runner.run())
        await asyncio.wait_for(started.wait(), timeout=30)  # audio may only flow once it has started
        await apply_session(self)
        self.emit({"type": "session.created", "session": self.state})
        self.emit({"type": "conversation.created", "conversation": {"id": new_id("conv"), "object": "realtime.conversation"}})

    async def close(self) -> None:
        """Stop the pipeline and flush nothing more to the client."""
        if self._idle_task:
            self._idle_task.cancel()
        await self.pipeline.task.queue_frame(CancelFrame())
        if self._runner_task:
            await asyncio.gather(self._runner_task, return_exceptions=True)
        self._outbox.put_nowait(None)
        if self._writer_task:
            await asyncio.gather(self._writer_task, return_exceptions=True)

    def emit(self, event: dict[str, Any]) -> None:
        """Queue a server event (in order, never blocking the pipeline)."""
        event.setdefault("event_id", new_id("event"))
        self._outbox.put_nowait(event)

    async def _writer(self) -> None:
        while (event := await self._outbox.get()) is not None:
            try:
                await self._send(event)
            except Exception as exc:  # the client went away: stop writing
                logger.debug(f"realtime: send failed: {exc}")
                return

    # -- client events -----------------------------------------------------------------

    async def handle(self, raw: str | bytes) -> None:
        """Apply one client message; any mistake becomes an ``error`` event."""
        event_id = None
        try:
            data = decode_message(raw)
            event_id = data.get("event_id") if isinstance(data.get("event_id"), str) else None
            event = parse_client_event(data)
            handler = getattr(self, "_on_" + data["type"].replace(".", "_"))
            await handler(event, data)
        except ProtocolError as exc:
            self.emit(error_event(exc, event_id))

    async def _on_session_update(self, event, data) -> None:
        self.state = merge_session(self.state, data["session"], voices=self.voices)
        await apply_session(self)
        self.emit({"type": "session.updated", "session": self.state})

    async def _on_input_audio_buffer_append(self, event, data) -> None:
        if not self.media.audio_over_events:
            raise ProtocolError("invalid_state", "this session's audio travels on its WebRTC track, not in events")
        audio = decode_audio(data["audio"])
        pcm = await self.wire.decode(audio, (self.state["audio"]["input"].get("format") or {}).get("type", "audio/pcm"))
        chunk_ms = len(pcm) / 2 / WIRE_RATE * 1000
        now = time.monotonic()
        self._first_audio_at = self._first_audio_at or now
        if self.input_ms + chunk_ms - (now - self._first_audio_at) * 1000 > MAX_AHEAD_MS:
            raise ProtocolError("audio_too_fast", f"audio is arriving more than {MAX_AHEAD_MS // 1000} s ahead of"
                                " real time; this chunk was dropped. Send audio at the pace it is recorded",
                                param="audio")
        self.input_ms += chunk_ms
        pcm_in = await self._resample_in.resample(pcm, WIRE_RATE, self.in_rate)
        if self.turn.mode is None:
            self._buffer.extend(pcm_in)
        elif pcm_in:
            await self.transport_in.feed(pcm_in)  # type: ignore[attr-defined]

    async def _on_input_audio_buffer_commit(self, event, data) -> None:
        if self.turn.mode is not None:
            raise ProtocolError("invalid_state", "with turn detection on, the server commits the audio buffer;"
                                " set audio.input.turn_detection to null to commit yourself")
        if len(self._buffer) < self.in_rate * 2 // 10:  # < 100 ms
            raise ProtocolError("input_audio_buffer_commit_empty", "the audio buffer holds less than 100 ms of audio")
        pcm, self._buffer = bytes(self._buffer), bytearray()
        item_id = self._commit_user_item()
        text = await self._transcribe(pcm)
        self._finish_user_item(item_id, text)
        if text:
            await self.pipeline.task.queue_frame(
                LLMMessagesAppendFrame(messages=[{"role": "user", "content": text}], run_llm=False))

    async def _on_input_audio_buffer_clear(self, event, data) -> None:
        self._buffer.clear()
        self.emit({"type": "input_audio_buffer.cleared"})

    async def _on_output_audio_buffer_clear(self, event, data) -> None:
        await self._cancel_response()
        self.emit({"type": "output_audio_buffer.cleared", "response_id": self.response.id if self.response else None})

    async def _on_conversation_item_create(self, event, data) -> None:
        item = data["item"]
        if item.get("type", "message") != "message":
            raise ProtocolError("unsupported", f"item type {item.get('type')!r} is not supported yet", param="item.type")
        text = " ".join(part.get("text") or part.get("transcript") or "" for part in item.get("content") or []).strip()
        role = item.get("role")
        item = {**item, "id": item.get("id") or new_id("item"), "object": "realtime.item", "status": "completed"}
        previous = self._last_item_id()
        self.items[item["id"]] = item
        self.emit({"type": "conversation.item.added", "previous_item_id": previous, "item": item})
        self.emit({"type": "conversation.item.done", "previous_item_id": previous, "item": item})
        await self.pipeline.task.queue_frame(
            LLMMessagesAppendFrame(messages=[{"role": role, "content": text}], run_llm=False))

    async def _on_conversation_item_retrieve(self, event, data) -> None:
        self.emit({"type": "conversation.item.retrieved", "item": self._item(data["item_id"])})

    async def _on_conversation_item_delete(self, event, data) -> None:
        item = self._item(data["item_id"])
        self._edit_context(item, None)
        del self.items[item["id"]]
        self.emit({"type": "conversation.item.deleted", "item_id": item["id"]})

    async def _on_conversation_item_truncate(self, event, data) -> None:
        item = self._item(data["item_id"])
        if item.get("role") != "assistant":
            raise ProtocolError("invalid_value", "only assistant items can be truncated", param="item_id")
        response = self.responses.get(item["id"])
        audio_end_ms = data["audio_end_ms"]
        if response is None or audio_end_ms > response.audio_ms + 1:
            raise ProtocolError("invalid_value", f"audio_end_ms {audio_end_ms} is past the item's audio"
                                f" ({int(response.audio_ms) if response else 0} ms)", param="audio_end_ms")
        kept = response.truncate(audio_end_ms)
        self._edit_context(item, kept)
        item["content"] = [{"type": "output_audio", "transcript": kept}]
        self.emit({"type": "conversation.item.truncated", "item_id": item["id"],
                   "content_index": data["content_index"], "audio_end_ms": audio_end_ms})

    async def _on_response_create(self, event, data) -> None:
        if self.response and not self.response.done:
            raise ProtocolError("conversation_already_has_active_response",
                                f"response {self.response.id} is still in progress; cancel it first")
        options = data.get("response") or {}
        if options.get("conversation") == "none" or options.get("input"):
            raise ProtocolError("unsupported", "out-of-band responses (conversation: none, input) are not supported"
                                " yet; the response always uses the conversation", param="response.conversation")
        modalities = options.get("output_modalities") or self.state.get("output_modalities") or ["audio"]
        self._next_modalities = modalities
        overrides = {}
        if options.get("instructions"):
            overrides["system_instruction"] = options["instructions"]
        if isinstance(options.get("max_output_tokens"), int):
            overrides["max_tokens"] = options["max_output_tokens"]
        if overrides:  # for this response only; the session's settings come back when it ends
            self._restore_settings = True
            await self.pipeline.task.queue_frame(LLMUpdateSettingsFrame(delta=LLMSettings(**overrides)))
        await self.pipeline.task.queue_frame(LLMConfigureOutputFrame(skip_tts=modalities == ["text"]))
        self.gate.allow_one()
        await self.pipeline.task.queue_frame(LLMRunFrame())

    async def _on_response_cancel(self, event, data) -> None:
        wanted = data.get("response_id")
        if wanted and (not self.response or self.response.id != wanted):
            raise ProtocolError("invalid_value", f"no response {wanted!r} is in progress", param="response_id")
        await self._cancel_response()

    # -- pipeline events ---------------------------------------------------------------

    def _hook_aggregators(self) -> None:
        user = self.pipeline.find("LLMUserAggregator")
        assistant = self.pipeline.find("LLMAssistantAggregator")

        @user.event_handler("on_user_turn_stopped")
        async def on_user_turn_stopped(aggregator, strategy, message):
            if self.user_item:
                item_id = self.user_item if self.user_item in self.committed else self._commit_user_item()
                self.user_item = None
                self._finish_user_item(item_id, (message.content or "").strip())

        # The assistant aggregator sits after the output, so its turns lag the LLM's: pair
        # each of its turns with the response that was current when it began.
        in_flight: list[Response | None] = []

        @assistant.event_handler("on_assistant_turn_started")
        async def on_assistant_turn_started(aggregator):
            in_flight.append(self.response)

        @assistant.event_handler("on_assistant_turn_stopped")
        async def on_assistant_turn_stopped(aggregator, message):
            response = in_flight.pop(0) if in_flight else self.response
            if response is not None and not response.done:
                if message.interrupted:
                    self._finish_response("cancelled", response, reason="turn_detected")
                else:
                    self._finish_response("completed", response)

    @property
    def heard_ms(self) -> float:
        """How much input audio the session has heard (the client's clock over WebSocket)."""
        if self.media.audio_over_events:
            return self.input_ms
        return (time.monotonic() - self._started_at) * 1000

    def on_audio_played(self, duration_ms: float) -> None:
        if not self.media.audio_over_events and self.response and not self.response.text_only:
            self.response.audio_ms += duration_ms

    def on_output_started(self) -> None:
        if not self.media.audio_over_events:
            self.emit({"type": "output_audio_buffer.started", "response_id": self.response.id if self.response else None})

    def on_output_stopped(self) -> None:
        if not self.media.audio_over_events:
            self.emit({"type": "output_audio_buffer.stopped", "response_id": self.response.id if self.response else None})

    def on_speech_started(self, start_secs: float) -> None:
        self._cancel_idle()
        if self.user_item is None:
            self.user_item = new_id("item")
        start_ms = max(0, int(self.heard_ms - start_secs * 1000))
        self.emit({"type": "input_audio_buffer.speech_started", "audio_start_ms": start_ms, "item_id": self.user_item})

    def on_speech_stopped(self, stop_secs: float) -> None:
        if self.user_item:
            end_ms = max(0, int(self.heard_ms - stop_secs * 1000))
            self.emit({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": end_ms, "item_id": self.user_item})

    def on_turn_ended(self) -> None:
        if self.user_item and self.user_item not in self.committed:
            self._commit_user_item(self.user_item)

    def on_response_started(self) -> None:
        modalities = self._next_modalities or self.state.get("output_modalities") or ["audio"]
        self._next_modalities = None
        previous = self._last_item_id()
        self.response = Response(new_id("resp"), new_id("item"), modalities)
        self.responses[self.response.item_id] = self.response
        self.items[self.response.item_id] = self.response.item()
        for event in self.response.started_events(previous):
            self.emit(event)
        self._cancel_idle()

    def on_llm_text(self, text: str) -> None:
        if self.response and not self.response.done and self.response.text_only:
            self.emit(self.response.text_delta(text))

    def on_spoken_text(self, text: str) -> None:
        if self.response and not self.response.done and not self.response.text_only:
            self.emit(self.response.transcript_delta(text))

    def on_usage(self, usage: Any) -> None:
        if self.response and not self.response.done:
            self.response.usage = usage

    async def _on_audio(self, pcm: bytes) -> None:
        if not self.response or self.response.done or self.response.text_only:
            return
        wire = await self.wire.encode(pcm, (self.state["audio"]["output"].get("format") or {}).get("type", "audio/pcm"))
        self.emit(self.response.audio_delta(wire, len(pcm) / 2 / WIRE_RATE * 1000))

    # -- helpers -----------------------------------------------------------------------

    def _finish_response(self, status: str, response: Response | None = None, reason: str | None = None) -> None:
        response = response or self.response
        previous = self._previous_of(response.item_id)
        for event in response.finished_events(status, previous_item_id=previous, reason=reason):
            self.emit(event)
        self.items[response.item_id] = response.item()
        self._start_idle()
        if self._restore_settings or response.modalities != (self.state.get("output_modalities") or ["audio"]):
            # The response had settings of its own (modality, instructions, length): the
            # session's come back for the next one.
            self._restore_settings = False
            asyncio.get_running_loop().create_task(apply_session(self))

    async def _cancel_response(self) -> None:
        if self.response and not self.response.done:
            await self.transport_in.broadcast_interruption()
            self._finish_response("cancelled", reason="client_cancelled")

    def _commit_user_item(self, item_id: str | None = None) -> str:
        item_id = item_id or new_id("item")
        previous = self._last_item_id()
        self.committed.add(item_id)
        item = {"id": item_id, "type": "message", "object": "realtime.item", "role": "user", "status": "completed",
                "content": [{"type": "input_audio", "transcript": None}]}
        self.items[item_id] = item
        self.emit({"type": "input_audio_buffer.committed", "previous_item_id": previous, "item_id": item_id})
        self.emit({"type": "conversation.item.added", "previous_item_id": previous, "item": item})
        return item_id

    def _finish_user_item(self, item_id: str, text: str) -> None:
        item = self.items.get(item_id)
        if item is None:
            return
        item["content"] = [{"type": "input_audio", "transcript": text}]
        if text:
            self.emit({"type": "conversation.item.input_audio_transcription.completed", "item_id": item_id,
                       "content_index": 0, "transcript": text,
                       "usage": {"type": "duration", "seconds": round(self.heard_ms / 1000, 3)}})
        else:
            self.emit({"type": "conversation.item.input_audio_transcription.failed", "item_id": item_id,
                       "content_index": 0, "error": {"type": "transcription_error", "code": "no_speech",
                                                     "message": "no speech was recognised"}})
        self.emit({"type": "conversation.item.done", "previous_item_id": self._previous_of(item_id), "item": item})

    async def _transcribe(self, pcm: bytes) -> str:
        import numpy as np

        stt = next((s.params for s in self.factory.config.stages if s.spec.name == "stt"), None)
        if stt is None:
            raise ProtocolError("unsupported", "this pipeline has no stt stage to transcribe a committed buffer")
        model = self.factory.store.whisper(stt.model, compute_type=stt.compute_type)
        samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0

        def run() -> str:
            segments, _ = model.transcribe(samples, language=stt.language, beam_size=stt.beam_size)
            return " ".join(segment.text.strip() for segment in segments).strip()

        return await asyncio.to_thread(run)

    def _start_idle(self) -> None:
        timeout = self.turn.idle_timeout_ms
        self._cancel_idle()
        if timeout:
            self._idle_task = asyncio.create_task(self._idle(timeout, self.heard_ms))

    def _cancel_idle(self) -> None:
        if self._idle_task:
            self._idle_task.cancel()
            self._idle_task = None

    async def _idle(self, timeout_ms: int, since_ms: float) -> None:
        await asyncio.sleep(timeout_ms / 1000)
        self.emit({"type": "input_audio_buffer.timeout_triggered", "audio_start_ms": int(since_ms),
                   "audio_end_ms": int(self.heard_ms), "item_id": new_id("item")})

    def _item(self, item_id: str) -> dict[str, Any]:
        if item_id not in self.items:
            raise ProtocolError("item_not_found", f"no item {item_id!r} in this conversation", param="item_id")
        return self.items[item_id]

    def _last_item_id(self) -> str | None:
        return next(reversed(self.items), None)

    def _previous_of(self, item_id: str) -> str | None:
        ids = list(self.items)
        index = ids.index(item_id) if item_id in ids else len(ids)
        return ids[index - 1] if index > 0 else None

    def _edit_context(self, item: dict[str, Any], new_text: str | None) -> None:
        """Replace (or with None, remove) the context message this item became."""
        context = self.pipeline.context.llm_context
        text = " ".join((p.get("transcript") or p.get("text") or "") for p in item.get("content") or []).strip()
        messages = context.get_messages()
        for index in range(len(messages) - 1, -1, -1):
            message = messages[index]
            if message.get("role") == item.get("role") and str(message.get("content", "")).strip() == text:
                if new_text is None:
                    del messages[index]
                else:
                    messages[index] = {**message, "content": new_text}
                context.set_messages(messages)
                return
