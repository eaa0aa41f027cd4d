"""Speaking with a voice served over OpenAI's speech API: a hosted provider or a self-hosted server.

A catalog entry with ``engine: openai`` names such a voice in one YAML line (``base_url``,
``model``, ``voice``, ``api_key: ${VAR}``): OpenAI itself, a vLLM or Kokoro server, another
Cadence. ``HostedSpeaker`` has ``PiperSpeaker``'s interface, so the tts stage and the speech
routes speak with it the same way, a sentence at a time (24 kHz PCM, OpenAI's documented
rate). What the API takes, it gets: the speed, and the reply's delivery as ``instructions``
(the tags and the steering line in words, which instruction-following models such as
gpt-4o-mini-tts perform; with ``send_instructions: false`` the delivery's loudness is applied
here instead); the voice's own volume is applied here; non-verbals become the sounds Cadence
renders itself (``voice/sounds.py``). Blocking calls: run them off the event loop.

pipecat's OpenAITTSService speaks the same API, but it is a whole pipeline service: a session
switches voices inside its one tts service, so the call is made here, with the openai SDK.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from openai import OpenAI

from cadence.voice import sounds
from cadence.voice.delivery import Prosody, SentencePlan

RATE = 24000  # OpenAI's pcm format


@dataclass(frozen=True)
class _Config:
    sample_rate: int = RATE


class HostedSpeaker:
    """One voice of an OpenAI-compatible speech API, with its catalog defaults."""

    config = _Config()
    sample_rate = RATE

    def __init__(self, entry: Any):
        key = entry.api_key.get_secret_value() if entry.api_key is not None else "not-needed"
        self.entry = entry
        self.speed = entry.speed  # a session sets it to its audio.output.speed times the voice's
        # No SDK retries: a sentence late by a retry's backoff is worse than its error.
        self._client = OpenAI(base_url=entry.base_url, api_key=key, timeout=entry.timeout_s, max_retries=0)

    def instructions(self, plan: SentencePlan) -> str | None:
        """How the sentence should sound, in words: its tags and steering line."""
        return "; ".join(plan.cues)[:1000] or None

    def speak(self, text: str, prosody: Prosody = Prosody(), plan: SentencePlan | None = None) -> Iterator[bytes]:
        """16-bit 24 kHz PCM of ``text`` as the API streams it (``plan``: its delivery's cues)."""
        plan = plan or SentencePlan(prosody)
        speed = max(0.25, min(4.0, self.speed * plan.prosody.speed))
        extra = {"instructions": i} if (i := self.instructions(plan)) and self.entry.send_instructions else {}
        # A provider told how to sound performs the loudness itself; only without words is it approximated here.
        volume = 1.0 if self.entry.send_instructions else plan.prosody.volume
        with self._client.audio.speech.with_streaming_response.create(
                model=self.entry.model, voice=self.entry.voice, input=text, response_format="pcm", speed=speed,
                **extra) as reply:
            carry = b""
            for chunk in reply.iter_bytes(4800):
                chunk, carry = carry + chunk, b""
                if len(chunk) % 2:  # a sample split across chunks
                    chunk, carry = chunk[:-1], chunk[-1:]
                yield self._gain(chunk, volume)

    def _gain(self, pcm: bytes, volume: float) -> bytes:
        gain = self.entry.volume * volume
        if abs(gain - 1.0) < 1e-3:
            return pcm
        samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) * gain
        return np.clip(samples, -32768, 32767).astype(np.int16).tobytes()

    def fallback(self, fallback: str, prosody: Prosody = Prosody()) -> bytes:
        """The audio of a non-verbal's fallback: words spoken by the API, else Cadence's own sounds."""
        return sounds.fallback_audio(fallback, RATE, lambda words: b"".join(self.speak(words)))

    def say(self, text: str, plan: SentencePlan) -> Iterator[bytes]:
        """``text``'s words under ``plan``: its rate, and its cues as instructions."""
        return self.speak(text, plan.prosody, plan)

    def sentence(self, text: str, plan: SentencePlan) -> Iterator[bytes]:
        """A sentence under ``plan``: its non-verbals, its words, its pause."""
        return sounds.sentence(self, text, plan)

    def prerender(self, texts: list[str]) -> None:
        """Nothing is kept: each call is the provider's (and billed by it)."""

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

