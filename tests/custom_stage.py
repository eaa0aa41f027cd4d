"""A processor class in the user's own code, named in YAML as ``custom_stage:Lowercase``."""

from pipecat.frames.frames import Frame, LLMTextFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor


class Lowercase(FrameProcessor):
    """Lower-cases the LLM's text before it is spoken."""

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMTextFrame):
            frame = LLMTextFrame(frame.text.lower())
        await self.push_frame(frame, direction)
