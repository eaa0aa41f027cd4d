"""Character cards (SillyTavern's Character Card V2 ``chara_card_v2`` and V3 ``chara_card_v3``).

A card arrives as JSON, or as a PNG with the card base64-encoded in a ``tEXt`` chunk
(``ccv3`` for V3, ``chara`` for V2; V3 wins when both are there). V1 cards (fields at the
root) are read too. Unknown fields are kept, never an error. ``Character`` turns a card
into what the prompt needs: the persona (system prompt, description, personality,
scenario, example dialogue), the greeting, the post-history instructions, and the
lorebook entries whose keys occur in the recent turns, within the book's token budget.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DEFAULT_LORE_BUDGET = 256  # tokens of lorebook entries per request when the book names none
DEFAULT_SCAN_DEPTH = 4  # recent messages scanned for an entry's keys when the book names none


class CardError(ValueError):
    """A card that cannot be read; the message says what is wrong."""


class _Kept(BaseModel):
    model_config = ConfigDict(extra="allow")


class LoreEntry(_Kept):
    keys: list[str] = Field(default_factory=list)
    content: str = ""
    enabled: bool = True
    insertion_order: int = 0
    case_sensitive: bool | None = None
    constant: bool | None = None
    selective: bool | None = None
    secondary_keys: list[str] = Field(default_factory=list)
    priority: int | None = None


class CharacterBook(_Kept):
    name: str | None = None
    scan_depth: int | None = None
    token_budget: int | None = None
    entries: list[LoreEntry] = Field(default_factory=list)


class CharacterCard(_Kept):
    """The card's ``data`` (V2/V3) or root (V1) fields; a null list counts as empty."""

    @field_validator("alternate_greetings", "tags", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value

    name: str = ""
    description: str = ""
    personality: str = ""
    scenario: str = ""
    first_mes: str = ""
    mes_example: str = ""
    system_prompt: str = ""
    post_history_instructions: str = ""
    alternate_greetings: list[str] = Field(default_factory=list)
    character_book: CharacterBook | None = None
    tags: list[str] = Field(default_factory=list)


def parse_card(raw: Any) -> CharacterCard:
    """A card from its JSON object (V1, V2 or V3); CardError when it is not one."""
    if not isinstance(raw, dict):
        raise CardError("a character card must be a JSON object")
    spec = raw.get("spec")
    data = raw.get("data") if spec in ("chara_card_v2", "chara_card_v3") else raw
    if not isinstance(data, dict):
        raise CardError(f"a {spec} card needs a 'data' object")
    try:
        card = CharacterCard.model_validate(data)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in error["loc"])
        raise CardError(f"card field {where}: {error['msg']}") from exc
    if not card.name.strip():
        raise CardError("the card has no name")
    return card


def read_card(data: bytes) -> CharacterCard:
    """A card from a file's bytes: a PNG with the card in a text chunk, or JSON."""
    if data.startswith(PNG_SIGNATURE):
        chunks = _png_text_chunks(data)
        encoded = chunks.get("ccv3") or chunks.get("chara")
        if encoded is None:
            raise CardError("the PNG holds no character card (no 'ccv3' or 'chara' text chunk)")
        try:
            return parse_card(json.loads(base64.b64decode(encoded, validate=False)))
        except (binascii.Error, ValueError) as exc:
            if isinstance(exc, CardError):
                raise
            raise CardError(f"the PNG's card chunk is not base64 JSON: {exc}") from exc
    try:
        return parse_card(json.loads(data.decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CardError(f"not a PNG card and not JSON: {exc}") from exc


def load_card(path: str | Path) -> CharacterCard:
    """A card file (``.json`` or ``.png``); CardError naming the file otherwise."""
    path = Path(path)
    try:
        return read_card(path.read_bytes())
    except OSError as exc:
        raise CardError(f"{path}: cannot read the card: {exc.strerror}") from exc
    except CardError as exc:
        raise CardError(f"{path}: {exc}") from exc


def _png_text_chunks(data: bytes) -> dict[str, str]:
    chunks, offset = {}, len(PNG_SIGNATURE)
    while offset + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        body = data[offset + 8:offset + 8 + length]
        if kind == b"tEXt" and b"\0" in body:
            keyword, _, text = body.partition(b"\0")
            chunks[keyword.decode("latin-1").lower()] = text.decode("latin-1")
        if kind == b"IEND":
            break
        offset += 12 + length
    return chunks


class Character:
    """A card as the prompt uses it, for one user (``{{user}}``)."""

    def __init__(self, card: CharacterCard, user_name: str = "User"):
        self.card = card
        self.user_name = user_name

    @property
    def name(self) -> str:
        """What ``{{char}}`` becomes: V3's ``nickname`` when there is one, else the name."""
        nickname = (self.card.model_extra or {}).get("nickname")
        return nickname if isinstance(nickname, str) and nickname.strip() else self.card.name

    def fill(self, text: str) -> str:
        """``{{char}}`` / ``<BOT>`` → the character, ``{{user}}`` / ``<USER>`` → the user."""
        text = re.sub(r"\{\{char\}\}|<bot>", lambda _: self.name, text, flags=re.IGNORECASE)
        return re.sub(r"\{\{user\}\}|<user>", lambda _: self.user_name, text, flags=re.IGNORECASE)

    def persona(self, original: str = "") -> str:
        """The system prompt: the card's own (``{{original}}`` → ``original``, the session's
        instructions) or ``original``, then who the character is and how they talk."""
        head = self.card.system_prompt.replace("{{original}}", original) if self.card.system_prompt else original
        parts = [head,
                 f"You are {self.name}." if not head.strip() else "",
                 self.card.description, _labelled("Personality", self.card.personality),
                 _labelled("Scenario", self.card.scenario),
                 _labelled(f"How {self.name} talks", self.card.mes_example)]
        return self.fill("\n\n".join(p.strip() for p in parts if p and p.strip()))

    def greeting(self) -> str | None:
        return self.fill(self.card.first_mes).strip() or None

    def post_history(self) -> str:
        return self.fill(self.card.post_history_instructions).strip()

    def lore_budget(self) -> int:
        book = self.card.character_book
        return (book.token_budget if book and book.token_budget else DEFAULT_LORE_BUDGET)

    def lore(self, recent: list[str], count_tokens, budget: int | None = None) -> list[str]:
        """Entries whose keys occur in the last ``scan_depth`` messages of ``recent`` (constant
        entries always), by insertion order, as many as fit the book's token budget."""
        book = self.card.character_book
        if book is None:
            return []
        scanned = "\n".join(recent[-(book.scan_depth or DEFAULT_SCAN_DEPTH):])
        chosen, used = [], 0
        for entry in sorted((e for e in book.entries if e.enabled and e.content.strip()),
                            key=lambda e: (e.insertion_order, -(e.priority or 0))):
            if not (entry.constant or _mentions(scanned, entry.keys, entry.case_sensitive)):
                continue
            if entry.selective and entry.secondary_keys and not _mentions(scanned, entry.secondary_keys,
                                                                           entry.case_sensitive):
                continue
            text = self.fill(entry.content.strip())
            cost = count_tokens(text)
            if used + cost > (self.lore_budget() if budget is None else budget):
                continue
            chosen.append(text)
            used += cost
        return chosen


def _mentions(text: str, keys: list[str], case_sensitive: bool | None) -> bool:
    flags = 0 if case_sensitive else re.IGNORECASE
    return any(key.strip() and re.search(rf"(?<!\w){re.escape(key.strip())}(?!\w)", text, flags) for key in keys)


def _labelled(label: str, text: str) -> str:
    return f"{label}: {text.strip()}" if text and text.strip() else ""
