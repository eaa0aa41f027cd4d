"""File transport: a WAV or typed text in, the reply as text and a WAV out.

For offline use, tests and benchmarks. Audio is streamed into the pipeline in 20 ms
chunks at real-time pace (``pace=1``; higher is faster), like a microphone would, so
VAD, turn detection and STT run exactly as they do live. The conversation is
half-duplex while a reply plays: input pauses from the reply's first audio until it has
been played, so a WAV with several questions yields one reply per question, in order,
rather than barge-ins. Until that first audio the input goes on, so speech that follows a
turn judged over (a pause after "Nova,") resumes that turn, as it does live.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    EndFrame,
    InputAudioRawFrame,
    LLMMessagesAppendFrame,
    OutputAudioRawFrame,
    StartFrame,
    TTSSpeakFrame,
)
from pipecat.transports.base_input import BaseInputTransport
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import TransportParams
from pipecat.workers.runner import WorkerRunner

from cadence.errors import InputError
from cadence.frames import TurnResumedFrame
from cadence.memory.cards import Character
from cadence.pipelines.builder import PipelineFactory, SessionPipeline
from cadence.timeline import TurnTimeline, TurnTimes

CHUNK_SECS = 0.02


def read_wav(path: str | Path, sample_rate: int) -> np.ndarray:
    """A WAV (any common rate and sample format, mono or stereo) as mono int16 at ``sample_rate``."""
    import soundfile as sf
    import soxr

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: input file not found")
    try:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise InputError(f"{path}: not a readable audio file ({exc})") from exc
    if audio.size == 0:
        raise InputError(f"{path}: the audio file holds no samples")
    mono = audio.mean(axis=1)
    if rate != sample_rate:
        mono = soxr.resample(mono, rate, sample_rate)
    return (np.clip(mono, -1.0, 1.0) * 32767).astype(np.int16)


def write_wav(path: str | Path, audio: bytes, sample_rate: int) -> None:
    """Write mono int16 PCM as a WAV file."""
    import soundfile as sf

    sf.write(str(path), np.frombuffer(audio, dtype=np.int16), sample_rate, subtype="PCM_16")


class FileInputTransport(BaseInputTransport):
    """Input end of a file session: audio is pushed in by ``FileConversation``."""

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self.set_transport_ready(frame)


class FileOutputTransport(BaseOutputTransport):
    """Output end of a file session: collects the reply audio in memory."""

    def __init__(self, params: TransportParams, **kwargs):
        super().__init__(params, **kwargs)
        self.audio = bytearray()

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self.set_transport_ready(frame)

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        self.audio.extend(frame.audio)
        return True


@dataclass
class Exchange:
    """One user turn and the reply to it (``user`` is None for the greeting, which comes first)."""

    user: str | None
    reply: str = ""
    interrupted: bool = False


@dataclass
class ConversationResult:
    """What a file conversation produced."""

    exchanges: list[Exchange]
    audio: bytes
    sample_rate: int
    timings: list[TurnTimes] = field(default_factory=list)


class FileConversation:
    """Runs one session over a WAV or a list of texts and collects the exchanges."""

    def __init__(
        self,
        factory: PipelineFactory,
        *,
        pace: float = 1.0,
        reply_timeout: float = 60.0,
        on_exchange: Callable[[Exchange], None] | None = None,
        user: str | None = None,
    ):
        self.factory = factory
        self.user = user  # whose memory the session loads and keeps (none: the session's own)
        self.on_exchange = on_exchange
        self.pace = pace
        self.reply_timeout = reply_timeout
        transport = factory.config.config.transport
        self.in_rate = transport.audio_in_sample_rate
        self.out_rate = transport.audio_out_sample_rate

    def _session(self) -> tuple[SessionPipeline, FileInputTransport, FileOutputTransport, TurnTimeline]:
        params = TransportParams(
            audio_in_enabled=True,
            audio_in_sample_rate=self.in_rate,
            audio_out_enabled=True,
            audio_out_sample_rate=self.out_rate,
            audio_out_end_silence_secs=0,
        )
        transport_in, transport_out = FileInputTransport(params), FileOutputTransport(params)
        session = self.factory.build(transport_in, transport_out, user_id=self.user)
        timeline = TurnTimeline()
        session.task.add_observer(timeline)
        return session, transport_in, transport_out, timeline

    async def run_audio(self, audio: np.ndarray) -> ConversationResult:
        """Stream ``audio`` (mono int16 at the input rate) through a fresh session."""
        session, transport_in, transport_out, timeline = self._session()
        state = _ExchangeRecorder(session, self.on_exchange)

        async def feed() -> None:
            await state.started.wait()
            await self._greet(session, state)
            chunk = int(self.in_rate * CHUNK_SECS)
            silence = np.zeros(chunk, dtype=np.int16)
            t0, sent = time.monotonic(), 0
            position, trailing = 0, 0.0
            deadline = None
            while True:
                await asyncio.wait_for(state.quiet.wait(), self.reply_timeout)  # half-duplex: hold input while a reply plays
                if position < len(audio):
                    samples = audio[position : position + chunk]
                    position += chunk
                else:
                    samples, trailing = silence, trailing + CHUNK_SECS
                    deadline = deadline or time.monotonic() + self.reply_timeout
                    if trailing >= 1.5 and not state.user_turn_open and state.idle.is_set():
                        break
                    if time.monotonic() > deadline:
                        break
                await transport_in.push_audio_frame(
                    InputAudioRawFrame(samples.tobytes(), sample_rate=self.in_rate, num_channels=1)
                )
                sent += 1
                if self.pace > 0:
                    await asyncio.sleep(max(0.0, t0 + sent * CHUNK_SECS / self.pace - time.monotonic()))
                else:
                    await asyncio.sleep(0)
            await session.task.queue_frame(EndFrame())

        await self._run(session, feed())
        return ConversationResult(state.exchanges, bytes(transport_out.audio), self.out_rate, timeline.turns)

    async def run_text(self, texts: Iterable[str] | AsyncIterator[str]) -> ConversationResult:
        """Send each text as a user turn and wait for its reply (one session for all)."""
        session, _, transport_out, timeline = self._session()
        state = _ExchangeRecorder(session, self.on_exchange)

        async def feed() -> None:
            await state.started.wait()
            await self._greet(session, state)
            async for text in _aiter(texts):
                state.begin(text)
                await session.task.queue_frame(
                    LLMMessagesAppendFrame(messages=[{"role": "user", "content": text}], run_llm=True)
                )
                await asyncio.sleep(0)
                await asyncio.wait_for(state.idle.wait(), timeout=self.reply_timeout)
            await session.task.queue_frame(EndFrame())

        await self._run(session, feed())
        return ConversationResult(state.exchanges, bytes(transport_out.audio), self.out_rate, timeline.turns)

    async def _greet(self, session: SessionPipeline, state: _ExchangeRecorder) -> None:
        """With ``session.greeting`` (or a character card's first message), the companion speaks
        first, or writes first when the pipeline has no TTS, and remembers it."""
        config = self.factory.config
        greeting = config.config.session.greeting or (Character(config.character).greeting()
                                                      if config.character else None)
        window = session.roles.context_window
        if not greeting or (window is not None and window.restored):  # a resumed conversation is not greeted anew
            return
        if session.roles.tts is not None:
            state.begin(None)
            await session.task.queue_frame(TTSSpeakFrame(greeting, append_to_context=True))
            await asyncio.wait_for(state.idle.wait(), timeout=self.reply_timeout)
        else:
            state.exchanges.append(Exchange(user=None, reply=greeting))
            if self.on_exchange:
                self.on_exchange(state.exchanges[-1])
            await session.task.queue_frame(
                LLMMessagesAppendFrame(messages=[{"role": "assistant", "content": greeting}], run_llm=False))

    @staticmethod
    async def _run(session: SessionPipeline, feeder) -> None:
        runner = WorkerRunner(handle_sigint=False)
        feed_task = asyncio.create_task(feeder)
        try:
            await runner.add_workers(session.task)
            await runner.run()
        finally:
            if not feed_task.done():
                feed_task.cancel()
            await asyncio.gather(feed_task, return_exceptions=True)
        if feed_task.done() and not feed_task.cancelled() and feed_task.exception():
            raise feed_task.exception()  # type: ignore[misc]


class _ExchangeRecorder:
    """Follows the context aggregators' events: who said what, and whether a reply is pending."""

    def __init__(self, session: SessionPipeline, on_exchange: Callable[[Exchange], None] | None):
        self.exchanges: list[Exchange] = []
        self.started = asyncio.Event()
        self.idle = asyncio.Event()  # no reply pending
        self.idle.set()
        self.quiet = asyncio.Event()  # no reply playing
        self.quiet.set()
        self.user_turn_open = False
        self._awaiting: Exchange | None = None  # the exchange whose reply is pending
        session.task.add_observer(_PlaybackWatch(self, session.roles.resumption))
        user, assistant = session.roles.user_aggregator, session.roles.assistant_aggregator
        if user is None or assistant is None:
            raise InputError("the file transport needs a pipeline with a `context` stage")

        @session.task.event_handler("on_pipeline_started")
        async def on_started(task, frame):
            self.started.set()

        @user.event_handler("on_user_turn_started")
        async def on_user_started(aggregator, strategy):
            self.user_turn_open = True

        @user.event_handler("on_user_turn_stopped")
        async def on_user_stopped(aggregator, strategy, message):
            self.user_turn_open = False
            if message.content and message.content.strip():
                self.begin(message.content.strip())

        @assistant.event_handler("on_assistant_turn_stopped")
        async def on_assistant_stopped(aggregator, message):
            exchange, self._awaiting = self._awaiting, None
            if exchange is not None:
                exchange.reply = (message.content or "").strip()
                exchange.interrupted = message.interrupted
                if on_exchange:
                    on_exchange(exchange)
            if self._awaiting is None:
                self.idle.set()
            self.quiet.set()

    def begin(self, user_text: str | None) -> None:
        """A user turn went to the LLM: record it; input pauses once its reply plays."""
        self._awaiting = Exchange(user=user_text)
        self.exchanges.append(self._awaiting)
        self.idle.clear()

    def resumed(self) -> None:
        """The user went on before the reply was heard: that exchange never happened."""
        if self._awaiting is not None and self._awaiting in self.exchanges:
            self.exchanges.remove(self._awaiting)
        self._awaiting = None


class _PlaybackWatch(BaseObserver):
    """Tells the recorder when a reply starts playing and when a turn resumed."""

    def __init__(self, recorder: _ExchangeRecorder, resumption: object):
        super().__init__()
        self._recorder = recorder
        self._resumption = resumption  # the processor that pushes TurnResumedFrame

    async def on_push_frame(self, data: FramePushed) -> None:
        frame = data.frame
        if isinstance(frame, BotStartedSpeakingFrame):
            if not self._recorder.idle.is_set():  # (observers lag: a reply already done stays done)
                self._recorder.quiet.clear()
        elif isinstance(frame, TurnResumedFrame) and data.source is self._resumption:
            self._recorder.resumed()


async def _aiter(texts: Iterable[str] | AsyncIterator[str]) -> AsyncIterator[str]:
    if hasattr(texts, "__aiter__"):
        async for text in texts:  # type: ignore[union-attr]
            yield text
    else:
        for text in texts:  # type: ignore[union-attr]
            yield text
