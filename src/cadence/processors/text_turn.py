"""A text end-of-utterance score: how likely the words heard so far are a finished message.

The score is the in-process small LM's probability that the user's words end here: with
the transcript's closing mark taken off, P(next token = ".", "?", "!" or the chat template's
end of message), close to the method LiveKit's turn detector uses with a small LM of its own
(it, too, reads the words without punctuation). A finished sentence ("What is the capital
of France") mostly scores 1e-2 to 0.7; a fragment ("Tell me about the") ≤ ~4e-4. Measured on Qwen2.5-0.5B (../shared/MODELS.md): ~70 ms on two threads (~130 on one) for a short transcript
with the template's prefix cached.

The scorer has its own llama.cpp context on the same (mmap-shared) weights as the chat
model, so scoring never evicts a reply's KV cache, and it reads only the last token's
logits (``logits_all`` would allocate n_ctx × vocab floats).
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
from pathlib import Path
from typing import Any

_CLOSING_MARK = re.compile(r"\s*[.!?]+$")
# ChatML, as the packaged Qwen models use it. The user's text follows the prefix.
PREFIX = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
END_OF_MESSAGE = "<|im_end|>"


class TextTurnScorer:
    """P(the message ends | the transcript's words) from a small chat LM: the probability that a
    closing mark or the end of the message comes next (see ``score``); one call at a time."""

    def __init__(self, model_path: Path, *, n_ctx: int = 256, n_threads: int | None = None):
        from llama_cpp import Llama

        # Two threads: a score is ~70 ms instead of ~130 ms on one, measured alone (in a
        # session, 85–185 ms: it shares the cores with Whisper's tail and a held reply's LLM).
        n_threads = n_threads or min(2, os.cpu_count() or 1)

        self._llm = Llama(str(model_path), n_ctx=n_ctx, n_threads=n_threads, n_threads_batch=n_threads,
                          logits_all=False, verbose=False)
        self._prefix = self._llm.tokenize(PREFIX.encode(), add_bos=False, special=True)
        end = self._llm.tokenize(END_OF_MESSAGE.encode(), add_bos=False, special=True)
        if len(end) != 1:
            raise ValueError(f"{model_path.name}: {END_OF_MESSAGE} is not one token; the text turn score needs a"
                             " ChatML model (e.g. qwen2.5-coder-0.5b-instruct)")
        self._end = end[0]
        # What may follow a finished sentence: the end of the message or its closing mark.
        marks = set()
        for mark in (".", "?", "!"):  # the token a mark is after a word (not a spaced variant)
            word = self._llm.tokenize(b"a", add_bos=False, special=False)
            with_mark = self._llm.tokenize(b"a" + mark.encode(), add_bos=False, special=False)
            if with_mark[:-1] != word:
                raise ValueError(f"{model_path.name}: {mark!r} after a word is not one token of its own")
            marks.add(with_mark[-1])
        self._ends = sorted({self._end, *marks})
        self._room = n_ctx - len(self._prefix) - 1
        self._lock = threading.Lock()
        with self._lock:
            self._llm.eval(self._prefix)

    def score(self, text: str) -> float:
        """The probability that the user's message is complete after ``text`` (0 for no text).

        Read without the transcript's own closing mark: Whisper ends a fragment with "." as
        readily as a sentence ("Tell me about the."), and after a "." the LM predicts the end
        of the message either way (a fragment scored ~0.2, a sentence ~0.1). Without it, the
        LM's probability that a mark or the message's end comes next separates them
        (fragments ≤ ~4e-4, sentences ≥ ~7e-4, mostly 1e-2 and above; measured on
        qwen2.5-coder-0.5b-instruct)."""
        text = _CLOSING_MARK.sub("", " ".join(text.split()))
        if not text:
            return 0.0
        import llama_cpp
        import numpy as np

        with self._lock:
            tokens = self._llm.tokenize(text.encode(), add_bos=False, special=False)[-self._room:]
            self._llm.n_tokens = len(self._prefix)  # keep the cached prefix, replace what followed it
            self._llm.eval(tokens)
            logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(self._llm.ctx, -1),
                                           shape=(self._llm.n_vocab(),))
            top = float(logits.max())
            return float(np.exp(logits[self._ends] - top).sum() / np.exp(logits - top).sum())

    async def ascore(self, text: str) -> float:
        """``score`` off the event loop."""
        return await asyncio.to_thread(self.score, text)


def shared_scorer(store: Any, model: str) -> TextTurnScorer:
    """The process's scorer for ``model`` (a packaged name or a path; resolved and loaded once,
    shared by every session)."""
    from cadence.models import resolve_model

    return store.get(("text-turn", model), lambda: TextTurnScorer(resolve_model(model, what="turn.text_model")))
