"""Short non-verbal sounds Cadence renders itself, for engines that cannot make them.

A breath, a sigh and a cough are shaped noise: band-limited noise under an envelope, quiet
next to speech. They are no words, so no transcript holds them and nothing is "read".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

# name → (seconds, low Hz, high Hz, peak level of full scale, attack share of the length)
SHAPES = {
    "breath": (0.35, 300.0, 2500.0, 0.05, 0.45),
    "sigh": (0.75, 200.0, 1800.0, 0.07, 0.25),
    "cough": (0.18, 150.0, 3000.0, 0.18, 0.08),
}


def render(name: str, rate: int) -> bytes:
    """``name``'s sound as 16-bit mono PCM at ``rate`` (same bytes every call: seeded)."""
    seconds, low, high, level, attack = SHAPES[name]
    count = int(seconds * rate)
    noise = np.random.default_rng(len(name)).standard_normal(count)
    spectrum = np.fft.rfft(noise)
    freqs = np.fft.rfftfreq(count, 1.0 / rate)
    spectrum[(freqs < low) | (freqs > high)] = 0
    shaped = np.fft.irfft(spectrum, count)
    shaped /= np.max(np.abs(shaped)) or 1.0
    rise = max(1, int(count * attack))
    envelope = np.concatenate([np.linspace(0.0, 1.0, rise), np.linspace(1.0, 0.0, count - rise) ** 2])
    return (shaped * envelope * level * 32767).astype(np.int16).tobytes()


def fallback_audio(fallback: str, rate: int, say: Callable[[str], bytes]) -> bytes:
    """A non-verbal's fallback (``say:<words>``, ``sound:<name>`` or ``pause:<seconds>``) as audio;
    ``say`` speaks words with the engine at hand."""
    kind, _, arg = fallback.partition(":")
    if kind == "say":
        return say(arg)
    if kind == "sound":
        return render(arg, rate)
    return silence(float(arg), rate)


def sentence(speaker: Any, text: str, plan: Any) -> Iterator[bytes]:
    """A sentence under ``plan`` on any speaker (``say(text, plan)``, ``fallback``, ``sample_rate``):
    its non-verbals first, then its words, then its pause."""
    for fallback in plan.before:
        yield speaker.fallback(fallback, plan.prosody)
    if text.strip():
        yield from speaker.say(text, plan)
    if plan.pause_s > 0:
        yield silence(plan.pause_s, speaker.sample_rate)


def silence(seconds: float, rate: int) -> bytes:
    """``seconds`` of 16-bit mono silence at ``rate``."""
    return bytes(2 * int(max(0.0, seconds) * rate))
