"""The pipecat ends of a Realtime session: audio in from events, audio out as events.

``RealtimeInputTransport`` receives decoded client audio and control requests from the
session; ``RealtimeOutputTransport`` hands every chunk of reply audio to the session,
which encodes it as ``response.output_audio.delta``. ``ResponseGate`` holds back the
LLM request of a finished user turn when the session asked for no automatic responses.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pipecat.frames.frames import Frame, InputAudioRawFrame, LLMContextFrame, OutputAudioRawFrame, StartFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.transports.base_input import BaseInputTransport
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import TransportParams

from cadence.frames import BackchannelAudioFrame


class RealtimeInputTransport(BaseInputTransport):
    """Feeds 16-bit mono PCM at the pipeline's input rate into the pipeline."""

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self.set_transport_ready(frame)

    async def feed(self, pcm: bytes) -> None:
        """Push one chunk of the user's audio."""
        await self.push_audio_frame(InputAudioRawFrame(pcm, sample_rate=self.sample_rate, num_channels=1))

    async def push_audio_frame(self, frame: InputAudioRawFrame):
        """Pushes the frame on at once. pipecat queues each one for a task that waits on the
        queue through ``asyncio.wait_for`` (a task and a timer per frame), which only an
        audio filter needs; the session's feeder already paces and orders the audio."""
        if self._params.audio_in_filter:
            await super().push_audio_frame(frame)
        elif self._params.audio_in_enabled and self._params.audio_in_passthrough and not self._paused:
            await self.push_frame(frame)


class RealtimeOutputTransport(BaseOutputTransport):
    """Passes each chunk of reply audio (16-bit mono PCM) to ``on_audio``, and each
    backchannel, whole, to ``on_backchannel`` (an event of its own, never a reply's audio)."""

    def __init__(self, params: TransportParams, on_audio: Callable[[bytes], Awaitable[None]],
                 on_backchannel: Callable[[BackchannelAudioFrame], Awaitable[None]] | None = None, **kwargs):
        super().__init__(params, **kwargs)
        self._on_audio = on_audio
        self._on_backchannel = on_backchannel

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        if isinstance(frame, BackchannelAudioFrame) and self._on_backchannel is not None:
            await self._on_backchannel(frame)
            return
        await super().process_frame(frame, direction)

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self.set_transport_ready(frame)

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        await self._on_audio(frame.audio)
        return True


class ResponseGate(FrameProcessor):
    """Lets an LLM request through only when responses are automatic or one was asked for.

    With ``create_response: false`` (or no turn detection) a finished user turn must not
    start a reply by itself; ``response.create`` opens the gate for one request.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.automatic = True
        self._allowed = 0

    def allow_one(self) -> None:
        """Let the next LLM request through whatever ``automatic`` says."""
        self._allowed += 1

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMContextFrame) and direction == FrameDirection.DOWNSTREAM:
            if frame.speculation:
                # A reply begun before the turn is decided: only where turns answer themselves
                # (an allowance is for the turn's real request, not for a guess at it).
                if self.automatic:
                    await self.push_frame(frame, direction)
                return
            if self._allowed:
                self._allowed -= 1
            elif not self.automatic:
                return
        await self.push_frame(frame, direction)


@dataclass
class Media:
    """How audio travels: as events (WebSocket) or on media tracks (WebRTC)."""

    transport_in: FrameProcessor
    transport_out: FrameProcessor
    audio_over_events: bool
