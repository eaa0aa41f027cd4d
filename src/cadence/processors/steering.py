"""Takes steering tags out of the LLM's streamed text before the TTS and the transcript see it.

The ``tts`` stage puts this processor right before its service, so whatever the engine no
bracket or tag word is spoken and ``response.output_audio_transcript.*`` (and text-only
replies) carry the words alone. Each tag goes on as a ``DeliveryTagFrame`` between the
words around it; a TTS that performs delivery (Piper here) applies it to the words after.
"""

from __future__ import annotations

from pipecat.frames.frames import (
    Frame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSSpeakFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from cadence.frames import DeliveryTagFrame
from cadence.voice.tags import Segment, TagParser, strip_tags


class SteeringTags(FrameProcessor):
    """Splits LLM text into words and ``DeliveryTagFrame``s; strips tags from text to speak."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._parser = TagParser()
        self._trim = True  # the next words follow a tag or start the reply: no leading space
        self._spoke_space = True

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if direction != FrameDirection.DOWNSTREAM:
            await self.push_frame(frame, direction)
        elif isinstance(frame, LLMTextFrame):
            await self._split(frame)
        elif isinstance(frame, TTSSpeakFrame):
            frame.text, _ = strip_tags(frame.text)  # a greeting or filler: its words only
            if frame.text:
                await self.push_frame(frame, direction)
        elif isinstance(frame, (LLMFullResponseStartFrame, LLMFullResponseEndFrame, InterruptionFrame)):
            if isinstance(frame, LLMFullResponseEndFrame):
                left = [t for t in map(self._tidy, self._parser.end()) if t.tag is not None or t.text]
                await self._push_segments(left, LLMTextFrame(""))  # a bracket left open
            self._parser.reset()
            self._trim = self._spoke_space = True
            await self.push_frame(frame, direction)
        else:
            await self.push_frame(frame, direction)

    async def _split(self, frame: LLMTextFrame) -> None:
        segments = [s for s in map(self._tidy, self._parser.feed(frame.text)) if s.tag is not None or s.text]
        if len(segments) == 1 and segments[0].tag is None:
            frame.text = segments[0].text
            await self.push_frame(frame)
            return
        await self._push_segments(segments, frame)

    async def _push_segments(self, segments: list[Segment], frame: LLMTextFrame) -> None:
        for segment in segments:
            if segment.tag is not None:
                await self.push_frame(DeliveryTagFrame(tag=segment.tag))
            else:
                piece = LLMTextFrame(segment.text)
                piece.skip_tts = frame.skip_tts
                piece.append_to_context = frame.append_to_context
                await self.push_frame(piece)

    def _tidy(self, segment: Segment) -> Segment:
        """Drop the space a removed tag leaves (``"I know [sigh] it's"`` → ``"I know it's"``)."""
        if segment.tag is not None:
            self._trim = True
            return segment
        text = segment.text
        if self._trim and self._spoke_space:
            text = text.lstrip(" \t")
        if text:
            self._trim = False
            self._spoke_space = text[-1].isspace()
        return Segment(text=text)
