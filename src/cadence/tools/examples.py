"""Small real tools a companion can use offline, for ``configs/nova-tools.yaml`` (and yours):
``tools: {roll_dice: {function: cadence.tools.examples:roll_dice}}``."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import Field


def roll_dice(sides: Annotated[int, Field(ge=2, le=1000)] = 6,
              count: Annotated[int, Field(ge=1, le=20)] = 1) -> str:
    """Roll dice for a game or a roleplay: how many dice, and how many sides each has."""
    rolls = [random.randint(1, sides) for _ in range(count)]
    if count == 1:  # words, not JSON: a small model reads a result out as it was given
        return f"The {sides}-sided die shows {rolls[0]}."
    return f"The {count} dice ({sides}-sided) show {', '.join(map(str, rolls))}: {sum(rolls)} in all."


def current_time(timezone: str = "UTC") -> str:
    """The current date and time in a timezone (an IANA name such as Europe/Paris)."""
    now = datetime.now(ZoneInfo(timezone))
    return now.strftime(f"%A %d %B %Y, %H:%M ({timezone})")
