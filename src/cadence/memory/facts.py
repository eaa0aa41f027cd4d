"""Facts from what the user says about themself, in the third person.

The floor is rule-based and needs no model: first-person statements about lasting things
(name, people, pets, likes, work, home, plans) become 'The user …' sentences. A 135M model
does not follow an extraction schema reliably, so a model extractor (``LLMFactExtractor``)
is only used when a capable ``memory_model`` is configured, on top of the rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MAX_FACT_CHARS = 200


@dataclass(frozen=True)
class ExtractedFact:
    """A fact to remember; ``slot`` when a newer one of the kind replaces it (name, home, job)."""

    text: str
    slot: str | None = None


# Verbs whose first-person statements say something lasting about the user.
_VERBS = (
    "have|had|own|live|lived|work|worked|study|studied|play|played|love|like|hate|dislike|enjoy|prefer|"
    "want|plan|need|grew|was|moved|speak|collect|volunteer|teach|go|visit|cook|drive|ride|run|swim|paint|"
    "write|read|watch|listen|bake|garden|train|coach|care|adore|miss|got|became|started|finished|graduated|"
    "married|adopted|raised|support|believe|follow|am"
)
_FIRST_PERSON = re.compile(
    rf"^(?:i\s+(?:really\s+|also\s+|just\s+|still\s+|actually\s+|absolutely\s+)?(?P<verb>{_VERBS})\b"
    r"|i'm\b|i am\b|i've\b|i have\b|i'll\b|i will\b|my\b|mine\b)",
    re.IGNORECASE,
)
_LEAD = re.compile(r"^(?:(?:oh|well|also|and|but|so|anyway|btw|by the way|actually|ok|okay|yeah|yes|no|hey|hi|"
                   r"hello|um|uh|haha|lol|fun fact|guess what)[,!.:\s]+)+", re.IGNORECASE)
# "I'm …" states that say nothing lasting.
_PASSING = re.compile(
    r"^i(?:'m| am)\s+(?:(?:so|very|really|just|a bit|a little|pretty|not|too|kind of|kinda)\s+)*"
    r"(?:fine|good|great|ok|okay|alright|well|tired|sorry|sure|glad|happy to|here|back|done|listening|ready|"
    r"bored|busy|curious|wondering|thinking|not sure|confused|excited to|going to say|kidding|joking|"
    r"asking|trying to|talking|doing|feeling|hungry|sleepy|fine thanks|still here|afraid so|in)\b",
    re.IGNORECASE,
)
_TIME = re.compile(r"\b(tomorrow|tonight|next|this (?:week|weekend|month|year|summer|winter|spring|fall|autumn)|"
                   r"on (?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)|in (?:january|february|"
                   r"march|april|may|june|july|august|september|october|november|december)|soon|someday)\b",
                   re.IGNORECASE)
_LEADING_TIME = re.compile(r"^((?:next|this|last|on|in|tomorrow|tonight|soon|someday|every)\b[^,]{0,25}?),?\s+"
                           r"(?=I\b|I'm\b|I've\b|I'll\b|[Mm]y\b)", re.IGNORECASE)
_IRREGULAR = {"will": "will", "can": "can", "would": "would", "could": "could", "should": "should",
              "must": "must", "might": "might", "may": "may", "have": "has", "do": "does", "go": "goes", "am": "is", "was": "was", "had": "had", "got": "got"}
_SLOTS = [
    (re.compile(r"^my name is\b|^(?:please )?call me\b", re.I), "name"),
    (re.compile(r"^i live in\b|^i(?:'m| am) (?:from|based in|living in)\b", re.I), "home"),
    (re.compile(r"^i work as\b|^i(?:'m| am) (?:a|an) \w+ by (?:trade|profession)\b", re.I), "job"),
    (re.compile(r"^i(?:'m| am) \d+(?: years old)?\b", re.I), "age"),
    (re.compile(r"^my birthday is\b", re.I), "birthday"),
]
_FAVORITE = re.compile(r"^my (?:all[- ]time )?favou?rite (\w+(?: \w+)?) (?:is|are)\b", re.I)


def extract_facts(text: str) -> list[ExtractedFact]:
    """The lasting first-person statements in ``text`` as third-person facts."""
    facts: list[ExtractedFact] = []
    for sentence in _sentences(text):
        fact = _fact(sentence)
        if fact is not None and fact not in facts:
            facts.append(fact)
    return facts


def _sentences(text: str) -> list[str]:
    """Sentences, and their clauses that start anew with the speaker ("… and I have a dog")."""
    parts = re.split(r"(?<=[.!?;])\s+|\n+|,?\s+(?:and|but|so|plus)\s+(?=(?:I|I'm|I've|I'll|my|My)\b)", text.strip())
    return [p.strip() for p in parts if p and p.strip()]


def _fact(sentence: str) -> ExtractedFact | None:
    if sentence.endswith("?"):
        return None
    sentence = _LEAD.sub("", sentence).strip().rstrip(".!;").strip()
    sentence = sentence.replace("\u2019", "'")
    if when := _LEADING_TIME.match(sentence):  # "Next month I am going …" → "I am going … next month"
        sentence = f"{sentence[when.end():]} {when.group(1)[0].lower()}{when.group(1)[1:]}"
    if len(sentence.split()) < 3 or len(sentence) > MAX_FACT_CHARS:
        if not re.match(r"^(?:[Mm]y name is|[Cc]all me|I'm|I am) [A-Z]\w+$", sentence):
            return None
    lower = sentence.lower()
    if re.match(r"^(?:please )?call me [A-Z]\w+$", sentence, re.I):
        return ExtractedFact(f"The user's name is {sentence.split()[-1]}.", "name")
    if not _FIRST_PERSON.match(sentence) or _PASSING.match(sentence):
        return None
    if re.match(r"^i(?:'ll| will)\b", lower) and not _TIME.search(sentence):
        return None  # "I'll tell you …": a plan only when it has a time
    if re.match(r"^I(?:'m| am) [A-Z][a-z]+$", sentence):  # "I'm Priya"
        return ExtractedFact(f"The user's name is {sentence.split()[-1]}.", "name")
    slot = next((name for pattern, name in _SLOTS if pattern.match(sentence)), None)
    if slot is None and (favorite := _FAVORITE.match(sentence)):
        slot = "favorite " + favorite.group(1).lower()
    return ExtractedFact(_third_person(sentence), slot)


def _third_person(sentence: str) -> str:
    words = sentence.split()
    head = words[0].lower()
    rest = words[1:]
    if head in ("my", "mine"):
        out = ["The user's" if head == "my" else "The user's"] + rest
    elif head in ("i'm",):
        out = ["The user is"] + rest
    elif head in ("i've",):
        out = ["The user has"] + rest
    elif head in ("i'll",):
        out = ["The user will"] + rest
    else:  # "I <adverb>? <verb> …"
        out, conjugated = ["The user"], False
        for index, word in enumerate(rest):
            if not conjugated and word.lower() not in ("really", "also", "just", "still", "actually", "absolutely"):
                out.append(_conjugate(word))
                conjugated = True
                out += rest[index + 1:]
                break
            out.append(word)
    text = " ".join(out)
    for pattern, replacement in _PRONOUNS:
        text = pattern.sub(replacement, text)
    return text[0].upper() + text[1:] + "."


def _conjugate(verb: str) -> str:
    lower = verb.lower()
    if lower in _IRREGULAR:
        return _IRREGULAR[lower]
    if lower.endswith("ed"):
        return verb
    if re.search(r"(s|sh|ch|x|z|o)$", lower):
        return verb + "es"
    if re.search(r"[^aeiou]y$", lower):
        return verb[:-1] + "ies"
    return verb + "s"


_PRONOUNS = [
    (re.compile(r"\bmy\b", re.I), "their"),
    (re.compile(r"\bmyself\b", re.I), "themself"),
    (re.compile(r"\bmine\b", re.I), "theirs"),
    (re.compile(r"\bme\b", re.I), "them"),
    (re.compile(r"\bI'm\b"), "they're"),
    (re.compile(r"\bI\b"), "they"),
]


EXTRACT_PROMPT = (
    "Read what the user said. List each lasting fact it states about the user (their name, people, pets,"
    " home, work, likes, dislikes, health, plans), one per line, each a short sentence starting with"
    " 'The user'. Facts only from the user's words. If there are none, write NONE."
)


class LLMFactExtractor:
    """Facts by a capable model (``memory.memory_model``), one 'The user …' line each."""

    def __init__(self, router: Any, model: str, max_tokens: int = 120):
        self._router = router
        self.model = model
        self._max_tokens = max_tokens

    async def extract(self, text: str, user: str | None = None) -> list[ExtractedFact]:
        params: dict[str, Any] = {"model": self.model, "max_tokens": self._max_tokens, "temperature": 0.0,
                                  "messages": [{"role": "system", "content": EXTRACT_PROMPT},
                                               {"role": "user", "content": text}]}
        if user:
            params["user"] = user
        pieces = []
        async for chunk in self._router.stream(params):
            for choice in chunk.choices[:1]:
                if choice.delta and choice.delta.content:
                    pieces.append(choice.delta.content)
        facts = []
        for line in "".join(pieces).splitlines():
            line = line.strip().lstrip("-*• ").strip()
            if line.lower().startswith("the user") and 3 <= len(line.split()) and len(line) <= MAX_FACT_CHARS:
                fact = ExtractedFact(line if line.endswith(".") else line + ".")
                if fact not in facts:
                    facts.append(fact)
        return facts
