"""Small real tools a companion can use offline, for ``configs/nova-tools.yaml`` (and yours):
``tools: {roll_dice: {function: cadence.tools.examples:roll_dice}}``."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import Field


def roll_dice(sides: Annotated[int, Field(ge=2, le=1000)] = 6,
              count: Annotated[int, Field(ge=1, le=20)] = 1) -> dict:
    """Roll dice for a game or a roleplay: how many dice, and how many sides each has."""
    rolls = [random.randint(1, sides) for _ in range(count)]
    return {"rolls": rolls, "total": sum(rolls)}


def current_time(timezone: str = "UTC") -> str:
    """The current date and time in a timezone (an IANA name such as Europe/Paris)."""
    now = datetime.now(ZoneInfo(timezone))
    return now.strftime(f"%A %d %B %Y, %H:%M ({timezone})")
