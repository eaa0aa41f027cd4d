"""Where the user's audio stops travelling down a session's pipeline."""

from __future__ import annotations

from pipecat.frames.frames import Frame, InputAudioRawFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor


class InputAudioEnd(FrameProcessor):
    """Drops the user's audio frames, passing every other frame on.

    Placed after the last stage that hears audio (``ProcessorSpec.hears_audio``): every
    20 ms of a listening session's audio otherwise crosses each later processor's queue,
    and every observer's, for nothing (the context, LLM and TTS never read it).
    """

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame) and direction == FrameDirection.DOWNSTREAM:
            return
        await self.push_frame(frame, direction)
