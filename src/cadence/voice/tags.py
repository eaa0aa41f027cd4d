"""Steering tags in an LLM's streamed text: found across token boundaries, never spoken.

A character's line may carry its own delivery: a free-form steering bracket at the start
of a line (``[say with quiet intensity]``), an emotion or delivery tag (``[sad]``,
``[whispering]``) or a non-verbal (``[sigh]``). ``TagParser`` takes text as it streams (a tag
may arrive as ``"[whis"`` + ``"pering] I"``) and splits it into the words to speak and the
tags between them. Everything inside brackets leaves the spoken text, whatever it says:
a bracket is never read aloud, even one that names nothing Cadence knows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

TagKind = Literal["emotion", "delivery", "nonverbal", "reset", "steering", "unknown"]

EMOTIONS = ("happy", "sad", "angry", "surprised", "fearful", "disgusted")
DELIVERIES = ("whispering", "laughing")
NONVERBALS = ("breathe", "clear_throat", "cough", "laugh", "sigh", "yawn")
RESETS = ("neutral", "normal")
# Spellings models write for the same tags.
SYNONYMS = {
    "whisper": "whispering", "whispers": "whispering", "whispered": "whispering", "laughs": "laugh",
    "laughter": "laugh", "chuckle": "laugh", "chuckles": "laugh", "giggle": "laugh", "giggles": "laugh",
    "sighs": "sigh", "breath": "breathe", "breathes": "breathe", "inhale": "breathe", "coughs": "cough",
    "yawns": "yawn", "clears_throat": "clear_throat", "clear_throat": "clear_throat", "ahem": "clear_throat",
    "excited": "happy", "joyful": "happy", "cheerful": "happy", "sorrowful": "sad", "sadly": "sad",
    "scared": "fearful", "afraid": "fearful", "mad": "angry", "surprise": "surprised", "disgust": "disgusted",
}
MAX_TAG_CHARS = 120  # an opening bracket not closed this soon is text, not a tag
_SPACES = re.compile(r"[\s\-]+")


@dataclass(frozen=True)
class Tag:
    """One bracket's meaning: ``name`` is the canonical tag (or the steering line's text)."""

    kind: TagKind
    name: str


def classify(inside: str) -> Tag:
    """What the text between ``[`` and ``]`` asks for: a known tag (any case, spaces or
    hyphens for underscores, common synonyms), a free-form steering line (several words),
    or unknown."""
    text = inside.strip()
    key = _SPACES.sub("_", text.lower()).strip("_.!")
    key = SYNONYMS.get(key, key)
    if key in EMOTIONS:
        return Tag("emotion", key)
    if key in DELIVERIES:
        return Tag("delivery", key)
    if key in NONVERBALS:
        return Tag("nonverbal", key)
    if key in RESETS:
        return Tag("reset", key)
    if len(text.split()) >= 2:
        return Tag("steering", " ".join(text.lower().split()))
    return Tag("unknown", key)


@dataclass(frozen=True)
class Segment:
    """A piece of the stream: words to speak (``text``) or a tag (``tag``), never both."""

    text: str = ""
    tag: Tag | None = None


MAX_OPEN_WORDS = 6  # a steering line is a few words; an unclosed bracket holding more was text


class TagParser:
    """Splits streamed text into spoken words and tags; bounded (a pending bracket holds at
    most ``MAX_TAG_CHARS``). Call ``feed`` per chunk and ``end`` when the reply ends."""

    def __init__(self) -> None:
        self._pending: str | None = None  # text after an unclosed "[", or None outside brackets
        self._depth = 0  # brackets open (nested ones count)

    def feed(self, text: str) -> list[Segment]:
        """The segments ``text`` completes; a tag still open waits for the next chunk."""
        out: list[Segment] = []
        words = []
        for char in text:
            if self._pending is None:
                if char == "[":
                    self._pending, self._depth = "", 1
                elif char != "]":  # a stray closing bracket is not spoken either
                    words.append(char)
                continue
            if char == "[":  # a bracket inside a bracket: all of it goes, whatever it says
                self._depth += 1
                self._pending += " "
            elif char == "]":
                self._depth -= 1
                if self._depth:
                    self._pending += " "
                    continue
                if words:
                    out.append(Segment(text="".join(words)))
                    words = []
                if self._pending.strip():
                    out.append(Segment(tag=classify(self._pending)))
                self._pending = None
            elif char == "\n" or len(self._pending) >= MAX_TAG_CHARS:
                tag = classify(self._pending)
                if tag.kind in ("steering", "unknown") and char == "\n" or len(self._pending) >= MAX_TAG_CHARS:
                    words.append(self._pending + char)  # not a tag: its words are text
                elif words:  # a known tag whose bracket a line break cut short: still a tag
                    out.append(Segment(text="".join(words)))
                    words = []
                if tag.kind not in ("steering", "unknown") and char == "\n":
                    out.append(Segment(tag=tag))
                    words.append(char)
                self._pending = None
            else:
                self._pending += char
        if words:
            out.append(Segment(text="".join(words)))
        return out

    def end(self) -> list[Segment]:
        """The reply ended with a bracket still open. A short one was a tag being written: it
        goes. One that starts with a known tag word is that tag and words after it; a long one
        (more than ``MAX_OPEN_WORDS`` words) was text after a stray ``[``: its words are spoken."""
        pending, self._pending = self._pending, None
        words = (pending or "").split()
        if not words:
            return []
        first = classify(words[0])
        if first.kind not in ("steering", "unknown") and len(words) > 1:
            return [Segment(tag=first), Segment(text=" " + " ".join(words[1:]))]
        if len(words) > MAX_OPEN_WORDS:
            return [Segment(text=" " + " ".join(words))]
        return []

    def reset(self) -> None:
        """Forget a bracket in progress (an interruption)."""
        self._pending = None


def strip_tags(text: str) -> tuple[str, list[Tag]]:
    """``text`` without its tags (spaces around a removed tag collapsed), and the tags."""
    parser = TagParser()
    spoken, tags = [], []
    for segment in parser.feed(text) + parser.end():
        if segment.tag is not None:
            tags.append(segment.tag)
        else:
            spoken.append(segment.text)
    return tidy("".join(spoken)), tags


def tidy(text: str) -> str:
    """Collapse the double spaces a removed tag leaves, and spaces before punctuation."""
    return re.sub(r" +([,.!?;:])", r"\1", re.sub(r"[ \t]{2,}", " ", text)).strip()
