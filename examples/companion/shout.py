"""An example processor of your own: upper-cases the reply before it is spoken."""

from pipecat.frames.frames import Frame, LLMTextFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pydantic import BaseModel


class Shout(FrameProcessor):
    """Upper-cases the reply before it is spoken, adding an optional suffix to each chunk."""

    class Params(BaseModel):
        model_config = {"extra": "forbid"}
        suffix: str = ""

    def __init__(self, suffix: str = "", **kwargs):
        super().__init__(**kwargs)
        self.suffix = suffix

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMTextFrame):
            frame = LLMTextFrame(frame.text.upper() + self.suffix)
        await self.push_frame(frame, direction)
