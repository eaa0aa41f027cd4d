"""Character cards: V1/V2/V3, JSON and PNG, substitution, lorebook selection (no models)."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from pathlib import Path

import pytest

from cadence.memory.cards import CardError, Character, load_card, parse_card, read_card

NOVA = Path(__file__).resolve().parents[2] / "configs" / "cards" / "nova.json"


def png_with(chunks: dict[str, dict]) -> bytes:
    """A 1×1 PNG carrying each card base64-encoded in a tEXt chunk of that keyword."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
    for keyword, card in chunks.items():
        out += chunk(b"tEXt", keyword.encode() + b"\0" + base64.b64encode(json.dumps(card).encode()))
    return out + chunk(b"IDAT", zlib.compress(b"\0\0")) + chunk(b"IEND", b"")


def count(text: str) -> int:
    return len(text.split())


def test_the_shipped_nova_card_reads_and_fills_names():
    character = Character(load_card(NOVA), user_name="Ines")
    persona = character.persona("You are a companion.")
    assert persona.startswith("You are a companion.")  # {{original}} is the session's instructions
    assert "Nova is a curious" in persona and "Ines calls Nova" in persona and "{{" not in persona
    assert character.greeting() == "Hey, it's Nova on the Meridian! How was your day?"
    assert character.post_history() == "Stay in character as Nova. Keep replies to one or two short sentences."


def test_png_cards_v3_wins_over_v2_and_unknown_fields_are_kept():
    v2 = {"spec": "chara_card_v2", "data": {"name": "Old"}}
    v3 = {"spec": "chara_card_v3", "spec_version": "3.0", "data": {"name": "New", "nickname": "N", "assets": []}}
    card = read_card(png_with({"chara": v2, "ccv3": v3}))
    assert card.name == "New" and card.model_extra["nickname"] == "N"
    assert read_card(png_with({"chara": v2})).name == "Old"


def test_v1_cards_and_errors():
    assert parse_card({"name": "Rin", "description": "<BOT> meets <USER>."}).description == "<BOT> meets <USER>."
    assert Character(parse_card({"name": "Rin", "description": "<BOT> meets <user>."}), "Ada").persona() \
        .endswith("Rin meets Ada.")
    with pytest.raises(CardError, match="no name"):
        parse_card({"spec": "chara_card_v2", "data": {"description": "x"}})
    with pytest.raises(CardError, match="no character card"):
        read_card(png_with({}))
    with pytest.raises(CardError, match="not a PNG card and not JSON"):
        read_card(b"\xff\xfe nonsense")
    with pytest.raises(CardError, match="character_book"):
        parse_card({"name": "X", "character_book": {"entries": "many"}})


def test_lore_entries_enter_exactly_when_their_keys_are_mentioned():
    character = Character(load_card(NOVA))
    assert character.lore(["Hi there!", "Hello!"], count) == []
    lore = character.lore(["How is the captain today?"], count)
    assert lore == ["Captain Mira runs the Meridian; she is strict but fair and hums old songs on night shifts."]
    assert character.lore(["What's the captaincy like?"], count) == []  # whole words only
    both = character.lore(["Tell me about the ship and its moon."], count)
    assert [t.split()[0:2] for t in both] == [["The", "Meridian"], ["The", "ship"]]  # insertion order
    old = ["the moon"] + ["nothing"] * 4  # beyond scan_depth (4 messages)
    assert character.lore(old, count) == []


def test_lore_respects_the_budget_constant_and_selective_entries():
    card = parse_card({"name": "X", "character_book": {"token_budget": 6, "entries": [
        {"keys": [], "content": "always here", "constant": True, "insertion_order": 0},
        {"keys": ["tea"], "content": "one two three four five", "insertion_order": 1},
        {"keys": ["tea"], "content": "green tea only", "selective": True, "secondary_keys": ["green"],
         "insertion_order": 2},
        {"keys": ["Tea"], "content": "case", "case_sensitive": True, "insertion_order": 3},
    ]}})
    character = Character(card)
    assert character.lore(["I like tea"], count) == ["always here"]  # 2 + 5 > 6: the long one is skipped
    assert character.lore(["green tea please"], count) == ["always here", "green tea only"]
    assert character.lore(["Tea time"], count) == ["always here", "case"]
