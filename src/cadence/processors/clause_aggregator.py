"""Sentence aggregation for TTS that lets a reply's first clause go ahead alone.

pipecat's TTS services speak sentence by sentence (``SimpleTextAggregator``), so the first
audio of a reply waits until the LLM has written the whole first sentence — ~15–25 tokens,
several hundred ms on a CPU. Speaking the first clause ("Oh, I love the sea,") as soon as
it is complete lets the voice start while the rest is still being written; after it, the
reply is spoken sentence by sentence again, so the prosody of later sentences is Piper's own.
"""

from __future__ import annotations

from pipecat.utils.text.base_text_aggregator import Aggregation, TextType
from pipecat.utils.text.simple_text_aggregator import SimpleTextAggregator

CLAUSE_ENDS = ",;:—–"


class FirstClauseAggregator(SimpleTextAggregator):
    """A ``SimpleTextAggregator`` that also ends the first piece of each reply at a clause
    boundary (a comma, semicolon, colon or dash followed by a space) once it holds at least
    ``min_words`` words. ``min_words`` of 0 turns that off (sentences only)."""

    def __init__(self, *, min_words: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.min_words = min_words
        self._first_done = False

    async def _check_sentence_with_lookahead(self, char: str, *, protected_end: int = 0) -> Aggregation | None:
        result = await super()._check_sentence_with_lookahead(char, protected_end=protected_end)
        if result is not None:
            self._first_done = True
            return result
        if self._first_done or not self.min_words or not char.isspace() or len(self._text) < 2:
            return None
        if self._text.rstrip()[-1:] not in CLAUSE_ENDS or len(self._text.split()) < self.min_words:
            return None
        text, self._first_done = self._text.strip(), True
        await super().reset()  # the whole buffer goes: no sentence candidate is left pending
        return Aggregation(text=text, type=TextType.SENTENCE)

    async def reset(self):
        await super().reset()
        self._first_done = False

    async def handle_interruption(self):
        await super().handle_interruption()
        self._first_done = False
