"""Processor classes in the user's own code, named in YAML as ``custom_stage:Lowercase`` (and ``:RecordingTTS``)."""

from collections.abc import AsyncGenerator

from pipecat.frames.frames import Frame, LLMTextFrame, TTSAudioRawFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.tts_service import TTSService


class Lowercase(FrameProcessor):
    """Lower-cases the LLM's text before it is spoken."""

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMTextFrame):
            frame = LLMTextFrame(frame.text.lower())
        await self.push_frame(frame, direction)


class RecordingTTS(TTSService):
    """A test double of a plugin TTS engine: records the text it is given, speaks 50 ms of silence."""

    heard: list[str] = []

    def __init__(self, **kwargs):
        super().__init__(push_start_frame=True, push_stop_frames=True, sample_rate=24000, **kwargs)

    def can_generate_metrics(self) -> bool:
        return False

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame, None]:
        RecordingTTS.heard.append(text)
        yield TTSAudioRawFrame(audio=bytes(2400), sample_rate=24000, num_channels=1, context_id=context_id)
