"""Sentence aggregation for TTS that lets a reply's first clause go ahead alone.

pipecat's TTS services speak sentence by sentence (``SimpleTextAggregator``), so the first
audio of a reply waits until the LLM has written the whole first sentence — ~15–25 tokens,
several hundred ms on a CPU. Speaking the first clause ("Oh, I love the sea,") as soon as
it is complete lets the voice start while the rest is still being written; after it, the
reply is spoken sentence by sentence again, so the prosody of later sentences is Piper's own.

A first sentence with no comma ("The city of Paris has a wide range of museums and art
galleries.") would still wait for all of it, so with ``phrase_words`` the first piece also
ends before a word that starts a phrase (of, and, with, because, ...) once it has that many
words, and at any word once it has twice that many.
"""

from __future__ import annotations

from pipecat.utils.text.base_text_aggregator import Aggregation, TextType
from pipecat.utils.text.simple_text_aggregator import SimpleTextAggregator

CLAUSE_ENDS = ",;:—–"
# Words a phrase starts with: a first piece cut just before one still reads naturally.
PHRASE_STARTS = frozenset(
    "and but or so because if when while where which who that than with without of in on at to for from "
    "about into like as after before until since".split())


class FirstClauseAggregator(SimpleTextAggregator):
    """A ``SimpleTextAggregator`` that also ends the first piece of each reply at a clause
    boundary (a comma, semicolon, colon or dash followed by a space) once it holds at least
    ``min_words`` words. ``min_words`` of 0 turns that off (sentences only)."""

    def __init__(self, *, min_words: int = 3, phrase_words: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.min_words = min_words
        self.phrase_words = phrase_words
        self._first_done = False

    async def _check_sentence_with_lookahead(self, char: str, *, protected_end: int = 0) -> Aggregation | None:
        result = await super()._check_sentence_with_lookahead(char, protected_end=protected_end)
        if result is not None:
            self._first_done = True
            return result
        if self._first_done or not char.isspace() or len(self._text) < 2:
            return None
        words = self._text.split()
        if self.min_words and self._text.rstrip()[-1:] in CLAUSE_ENDS and len(words) >= self.min_words:
            return await self._cut(len(words))
        if self.phrase_words and len(words) > self.phrase_words:
            if words[-1].lower() in PHRASE_STARTS and words[-2][-1:].isalpha():
                return await self._cut(len(words) - 1)  # the phrase's first word opens the next piece
            if len(words) > 2 * self.phrase_words:
                return await self._cut(len(words))
        return None

    async def _cut(self, keep: int) -> Aggregation:
        """The first ``keep`` words go as the first piece; the rest stays buffered."""
        words = self._text.split()
        text, rest, self._first_done = " ".join(words[:keep]), " ".join(words[keep:]), True
        await super().reset()  # no sentence candidate is left pending
        self._text = f"{rest} " if rest else ""
        return Aggregation(text=text, type=TextType.SENTENCE)

    async def reset(self):
        await super().reset()
        self._first_done = False

    async def handle_interruption(self):
        await super().handle_interruption()
        self._first_done = False
