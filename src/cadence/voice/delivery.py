"""Delivery: what tags, a steering line, ``deliveryMode`` and a sentence's sentiment do to
the voice, as engine-neutral multipliers, and what each engine can perform.

``Delivery`` is one reply's state. Tags change it for the words after them, until the next
tag or the end of the reply (``[neutral]`` resets early); a steering line (a bracket of
several words, or ``providerData.tts.steering``) maps its words through a small lexicon.
A sentence with no emotion, delivery or steering in force is nudged by its VADER
sentiment, within the mode's range, so a sad line is not read brightly. Non-verbals an
engine cannot make become the fallback in ``CAPABILITIES``; they are never spoken as words.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Literal

from loguru import logger

from cadence.voice.tags import Tag

DeliveryMode = Literal["STABLE", "BALANCED", "CREATIVE"]
DELIVERY_MODES: tuple[DeliveryMode, ...] = ("STABLE", "BALANCED", "CREATIVE")


@dataclass(frozen=True)
class Prosody:
    """Multipliers on a voice's own settings (1.0 = as the voice is), and silence after a sentence."""

    speed: float = 1.0
    noise: float = 1.0  # expressiveness (Piper noise_scale)
    noise_w: float = 1.0  # phoneme-length variation (Piper noise_w_scale)
    volume: float = 1.0
    pause_s: float = 0.0

    def times(self, other: Prosody, strength: float = 1.0) -> Prosody:
        """This prosody with ``other``'s effect applied at ``strength`` (0 = none, 1 = full)."""
        def mix(a: float, b: float) -> float:
            return a * (1.0 + (b - 1.0) * strength)
        return Prosody(mix(self.speed, other.speed), mix(self.noise, other.noise), mix(self.noise_w, other.noise_w),
                       mix(self.volume, other.volume), max(0.0, self.pause_s + (other.pause_s * strength)))


# deliveryMode: the base expressiveness, how strongly tags act, and the sentiment nudge's range.
MODES: dict[str, tuple[Prosody, float, float]] = {
    "STABLE": (Prosody(noise=0.45, noise_w=0.5, pause_s=0.08), 0.6, 0.35),
    "BALANCED": (Prosody(pause_s=0.1), 1.0, 1.0),
    "CREATIVE": (Prosody(noise=1.4, noise_w=1.3, pause_s=0.12), 1.4, 1.7),
}
# Emotion and delivery tags. Piper has no emotion inputs: these approximate with rate,
# expressiveness, loudness and pauses (documented as approximations in the README).
EFFECTS: dict[str, Prosody] = {
    "happy": Prosody(speed=1.06, noise=1.15, volume=1.05, pause_s=-0.03),
    "sad": Prosody(speed=0.86, noise=0.8, noise_w=0.9, volume=0.8, pause_s=0.2),
    "angry": Prosody(speed=1.08, noise=1.2, volume=1.2),
    "surprised": Prosody(speed=1.1, noise=1.3, volume=1.1),
    "fearful": Prosody(speed=1.1, noise=1.1, volume=0.85, pause_s=0.05),
    "disgusted": Prosody(speed=0.94, noise=0.95, pause_s=0.05),
    "whispering": Prosody(speed=0.92, noise=0.7, volume=0.3, pause_s=0.05),
    "laughing": Prosody(speed=1.06, noise=1.35, volume=1.05),
}
# Words of a free-form steering line and what they do ("[say with quiet intensity]").
STEERING_WORDS: dict[str, Prosody] = {
    **{w: Prosody(volume=0.55, noise=0.85) for w in ("quiet", "quietly", "soft", "softly", "hushed", "low",
                                                    "murmur", "murmuring")},
    **{w: EFFECTS["whispering"] for w in ("whisper", "whispering", "whispered")},
    **{w: Prosody(speed=1.05, noise=1.2, volume=1.05) for w in ("intense", "intensity", "urgent", "urgently",
                                                               "excited", "excitedly", "energetic", "passionate")},
    **{w: Prosody(speed=0.9, pause_s=0.08) for w in ("slow", "slowly", "calm", "calmly", "gentle", "gently",
                                                    "tender", "tenderly", "warm", "warmly", "thoughtful")},
    **{w: Prosody(speed=1.12) for w in ("fast", "quick", "quickly", "hurried", "rushed")},
    **{w: Prosody(volume=1.25, noise=1.1) for w in ("loud", "loudly", "shout", "shouting", "firm", "firmly")},
    **{w: EFFECTS["sad"] for w in ("sad", "sadly", "sorrowful", "melancholy", "mournful", "somber")},
    **{w: EFFECTS["happy"] for w in ("happy", "happily", "cheerful", "cheerfully", "bright", "joyful", "playful")},
    **{w: EFFECTS["angry"] for w in ("angry", "angrily", "stern", "sternly")},
    **{w: Prosody(noise=0.6, noise_w=0.7) for w in ("flat", "monotone", "steady", "even")},
}
# What each engine performs natively, and the fallback for the rest ("sound:<name>": a short
# sound Cadence renders itself; "say:<text>": words the engine can speak that are no tag
# word; "pause:<seconds>": silence). Whatever an engine lacks, the tag is never read aloud.
NONVERBAL_FALLBACKS = {
    "laugh": "say:Haha!", "sigh": "sound:sigh", "breathe": "sound:breath", "cough": "sound:cough",
    "clear_throat": "say:Ahem.", "yawn": "pause:0.5",
}
CAPABILITIES: dict[str, dict[str, str]] = {
    "piper": {
        "speed": "native (length_scale)", "expressiveness": "native (noise_scale, noise_w_scale)",
        "volume": "native", "sentence pauses": "silence after each sentence",
        "emotions": "approximated: rate, expressiveness, loudness, pauses", "whispering": "approximated: quiet, slower",
        "laughing": "approximated: brighter, faster", **{f"[{k}]": v for k, v in NONVERBAL_FALLBACKS.items()},
    },
    "openai": {
        "speed": "native (the API's speed)", "volume": "gain applied by Cadence",
        "emotions, deliveries, steering lines": "sent as instructions (models that follow them, e.g. gpt-4o-mini-tts)",
        "sentence pauses": "silence after each sentence", **{f"[{k}]": v for k, v in NONVERBAL_FALLBACKS.items()},
    },
    "other": {"tags": "removed from the text (never spoken); no delivery change", "non-verbals": "silence"},
}


@functools.cache
def _vader():
    import vader

    return vader.SentimentIntensityAnalyzer()


def sentiment(text: str) -> float:
    """VADER's compound score of ``text``, -1 (negative) … 1 (positive)."""
    return float(_vader().polarity_scores(text)["compound"]) if text.strip() else 0.0


@functools.cache
def _log_once(kind: str, name: str) -> None:  # bounded by the cache of distinct names below
    logger.info(f"steering: {kind} {name!r} has no delivery here; dropped from speech")


def note_unmapped(tag: Tag) -> None:
    """Log a tag Cadence does not map, once per process per name (names capped in length)."""
    if _log_once.cache_info().currsize < 256:
        _log_once(tag.kind, tag.name[:40])


@dataclass(frozen=True)
class SentencePlan:
    """How to speak one sentence: its prosody, the sounds before it, the silence after."""

    prosody: Prosody
    before: tuple[str, ...] = ()  # fallbacks of the non-verbals just before it
    pause_s: float = 0.0
    cues: tuple[str, ...] = ()  # the delivery in force, in words ("whispering"), for engines that take them


class Delivery:
    """One reply's delivery state (a TTS holds one; reset at each reply)."""

    def __init__(self, mode: DeliveryMode = "BALANCED", steering: str | None = None, use_sentiment: bool = True):
        self.mode: DeliveryMode = mode
        self.steering = steering
        self.use_sentiment = use_sentiment
        _vader()  # loaded once per process, here rather than on a reply's first sentence (~30 ms)
        self.begin_reply()

    def configure(self, *, mode: DeliveryMode | None = None, steering: str | None | bool = False,
                  use_sentiment: bool | None = None) -> None:
        """Change the session's settings (``steering=False`` leaves it as it is)."""
        if mode is not None:
            self.mode = mode
        if steering is not False:
            self.steering = steering or None
        if use_sentiment is not None:
            self.use_sentiment = use_sentiment

    def begin_reply(self) -> None:
        """A new reply: tags of the last one no longer apply; the session's steering line does."""
        self._effect: Prosody | None = steering_prosody(self.steering) if self.steering else None
        self._cue: str | None = self.steering
        self._before: list[str] = []

    def apply(self, tag: Tag) -> None:
        """A tag in the reply's text, acting on the words after it."""
        if tag.kind in ("emotion", "delivery", "steering"):
            self._cue = tag.name
        elif tag.kind == "reset":
            self._cue = None
        if tag.kind in ("emotion", "delivery"):
            self._effect = EFFECTS[tag.name]
        elif tag.kind == "nonverbal":
            if len(self._before) < 4:  # bounded: a run of tags plays at most four sounds
                self._before.append(NONVERBAL_FALLBACKS[tag.name])
        elif tag.kind == "reset":
            self._effect = None
        elif tag.kind == "steering":
            effect = steering_prosody(tag.name)
            if effect is None:
                note_unmapped(tag)
            else:
                self._effect = effect
        else:
            note_unmapped(tag)

    def plan(self, text: str) -> SentencePlan:
        """The plan of the next sentence, ``text`` (consumes the pending non-verbals)."""
        base, strength, nudge = MODES[self.mode]
        prosody = base
        if self._effect is not None:
            prosody = base.times(self._effect, strength)
            if self._effect.volume < 1.0:  # quiet stays quiet in every mode (a whisper is a whisper)
                prosody = replace(prosody, volume=base.volume * self._effect.volume)
        elif self.use_sentiment:
            score = sentiment(text)
            if abs(score) >= 0.3:
                prosody = base.times(EFFECTS["happy" if score > 0 else "sad"], min(1.0, abs(score) * 0.5 * nudge))
        before, self._before = tuple(self._before), []
        return SentencePlan(prosody, before, prosody.pause_s, (self._cue,) if self._cue else ())


def steering_prosody(line: str) -> Prosody | None:
    """The prosody a free-form steering line's words ask for, or None if no word is known."""
    effect, known = Prosody(), False
    for word in line.lower().replace(",", " ").split():
        if word in STEERING_WORDS:
            effect, known = effect.times(STEERING_WORDS[word]), True
    return effect if known else None
