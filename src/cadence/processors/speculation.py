"""The context stage's end-of-turn strategy: pipecat's eager (speculative) one, with the
provisional user message written exactly as the committed one will be.

pipecat's ``EagerUserTurnStopStrategy`` speculates on ``self._text + eager text`` (raw
transcripts glued together, Whisper's leading and trailing spaces kept), while the user
aggregator writes the committed message with ``concatenate_aggregated_text`` (spaced,
stripped). The reply itself matches either way (the match ignores spacing), but the
speculative prompt then differs from the turn the context keeps, so the next request
misses the KV cache from that message on. Here the speculation carries the aggregator's text.
"""

from __future__ import annotations

from pipecat.frames.frames import EagerTranscriptionFrame, TranscriptionFrame
from pipecat.turns.types import UserTurnSpeculation
from pipecat.turns.user_stop import EagerUserTurnStopStrategy
from pipecat.utils.string import TextPartForConcatenation, concatenate_aggregated_text


class AggregatedTextSpeculation(EagerUserTurnStopStrategy):
    """``EagerUserTurnStopStrategy`` speculating on the user message the aggregator will write."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._parts: list[TextPartForConcatenation] = []

    async def _reset(self):
        self._parts = []
        await super()._reset()

    async def _handle_transcription(self, frame: TranscriptionFrame):
        self._parts.append(TextPartForConcatenation(frame.text, includes_inter_part_spaces=frame.includes_inter_frame_spaces))
        await super()._handle_transcription(frame)

    async def _speculate(self, frame: EagerTranscriptionFrame):
        # pipecat's _speculate, with the aggregator's concatenation instead of `_text + text`.
        part = TextPartForConcatenation(frame.text, includes_inter_part_spaces=False)
        speculation = UserTurnSpeculation(text=concatenate_aggregated_text([*self._parts, part]))
        self._speculation = speculation
        self._speculation_timeout_task = self.task_manager.create_task(
            self._speculation_timeout_handler(speculation), f"{self}::_speculation_timeout_handler")
        await self.trigger_user_turn_inference_triggered(speculation=speculation)
