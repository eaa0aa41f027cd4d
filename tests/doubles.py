"""Test doubles: an instant LLM and an instant TTS, to measure the framework's own cost.

Never part of a default config; only ``benchmarks/realtime_sessions.py --instant`` uses them
(as ``doubles:InstantLLM`` and ``doubles:InstantTTS`` with ``tests/`` on PYTHONPATH).
"""

import numpy as np
from pipecat.frames.frames import (
    Frame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

REPLY = "I hear you, tell me more."
RATE = 24000
TONE = (np.sin(2 * np.pi * 220 * np.arange(RATE) / RATE) * 8000).astype(np.int16).tobytes()  # 1 s


class InstantLLM(FrameProcessor):
    """Answers every context with the same short reply, at once (a canned test double)."""

    @classmethod
    def from_config(cls, params, context):
        llm = cls()
        context.roles.llm = llm  # the Realtime session follows this stage's replies
        return llm

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMContextFrame):
            await self.push_frame(LLMFullResponseStartFrame())
            await self.push_frame(LLMTextFrame(REPLY))
            await self.push_frame(LLMFullResponseEndFrame())
            return
        await self.push_frame(frame, direction)


class InstantTTS(FrameProcessor):
    """Speaks every text as one second of a 220 Hz tone, at once (a test double)."""

    @classmethod
    def from_config(cls, params, context):
        tts = cls()
        context.roles.tts = tts  # the Realtime session follows what this stage speaks
        return tts

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMTextFrame):
            await self.push_frame(TTSStartedFrame())
            for i in range(0, len(TONE), RATE // 5):
                await self.push_frame(TTSAudioRawFrame(TONE[i:i + RATE // 5], sample_rate=RATE, num_channels=1))
            await self.push_frame(TTSTextFrame(frame.text, text_type="sentence"))
            await self.push_frame(TTSStoppedFrame())
            return
        await self.push_frame(frame, direction)
