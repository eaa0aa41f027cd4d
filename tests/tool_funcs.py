"""Python tools for the tests' YAML ``tools:`` sections (``tool_funcs:get_weather`` ...)."""

from __future__ import annotations

import time

CALLS: list[tuple[str, dict]] = []


def get_weather(city: str, unit: str = "celsius") -> str:
    """Get the current weather for a city."""
    CALLS.append(("get_weather", {"city": city, "unit": unit}))
    return f"cloudy and 14 degrees {unit} in {city}"


def explode(city: str) -> str:
    """A weather service that is down."""
    CALLS.append(("explode", {"city": city}))
    raise RuntimeError("the weather service is down")


def dawdle(city: str) -> str:
    """A weather service that never answers in time."""
    time.sleep(3)
    return "too late"


def note_down(city: str) -> None:
    """Writes a note down and says nothing back."""
    CALLS.append(("note_down", {"city": city}))
