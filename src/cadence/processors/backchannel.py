"""``backchannel``: a listener's "mm-hm" while the user talks.

It sits after the ``tts`` stage (right before the output transport). While a user turn is
open it looks for a moment every ``eval_interval_ms``: the user has spoken at least
``min_speech_ms`` in this turn, no backchannel came in the last ``min_gap_ms``, fewer than
``max_per_turn`` came this turn, and no reply is playing. With ``require_pause`` the moment
must be a pause the turn model holds open (``TurnPauseFrame.unfinished``, from the fused
``turn`` stage) and come within ``hard_deadline_ms`` of the pause; without it, a pause the
model judges *finished* is never one (the reply is about to come), and speech itself is.

The phrases are synthesized once, in the session's own voice, by the ``tts`` stage, and
played as ``BackchannelAudioFrame``: no TTS frames, so the output transport never reports
the bot speaking (no barge-in, no turn change), and nothing enters the context or any
transcript. The Realtime WebSocket sends it as a ``cadence.backchannel`` event; WebRTC
plays it on the outgoing track.

``providerData.backchannel`` (Inworld's names) sets the same fields; its fields for an LLM
decider (``small_model``, ``temperature``, ``max_tokens``, ``history_tail_items``,
``decider_kind``) are reported unsupported: the turn model decides here.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Annotated

from loguru import logger
from pipecat.audio.utils import create_file_resampler, scale_audio
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
    StartFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor, FrameProcessorSetup
from pydantic import Field, StringConstraints

from cadence.frames import BackchannelAudioFrame, TurnPauseFrame
from cadence.stages import BuildContext, ProcessorSpec, Spec, Stage

# providerData.backchannel fields of an LLM decider: accepted, reported unsupported.
LLM_DECIDER_FIELDS = ("small_model", "temperature", "max_tokens", "history_tail_items", "decider_kind")


class BackchannelParams(Spec):
    """Params of the ``backchannel`` stage (and of ``providerData.backchannel``)."""

    enabled: bool = Field(False, description="Say short acknowledgements while the user talks.")
    eval_interval_ms: int = Field(800, ge=100, le=10000, description="How often a moment is looked for.")
    min_speech_ms: int = Field(800, ge=0, description="Speech in the turn before the first one.")
    min_gap_ms: int = Field(4000, ge=0, description="No backchannel within this long of the last one.")
    max_per_turn: int = Field(3, ge=0, le=50, description="Backchannels per user turn.")
    hard_deadline_ms: int = Field(1500, ge=0, le=10000, description="A pause is answered within this long of the"
                                  " user stopping, or not at all (a late 'mm-hm' sounds like a reply).")
    volume_gain: float = Field(0.6, ge=0, le=2, description="Gain on the phrase's audio (1 = the voice's level).")
    require_pause: bool = Field(False, description="Only in a pause the turn model holds open (needs the `turn`"
                                " stage with text_model), never over speech.")
    phrases: list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]] = Field(
        ["Mm-hm.", "Yeah.", "Right."], min_length=1, max_length=8, description="Phrases (≤ 32 characters), in turn.")


class BackchannelInjector(FrameProcessor):
    """Plays short acknowledgements at moments the user's turn is unfinished (see the module)."""

    def __init__(self, params: BackchannelParams | None = None, *, tts: FrameProcessor | None = None, **kwargs):
        super().__init__(**kwargs)
        self.params = params or BackchannelParams()
        self._tts = tts
        self._phrases = itertools.cycle(self.params.phrases)
        self._audio: dict[str, bytes] = {}  # phrase → PCM at the output rate (this session's voice)
        self._rate = 24000
        self._started = False
        self._in_turn = self._speaking = self._bot_speaking = False
        self._speech_secs = 0.0
        self._speech_since: float | None = None
        self._turn_count = 0
        self._last: float | None = None
        self._paused_at: float | None = None
        self._ticker: asyncio.Task | None = None
        self.played: list[tuple[float, str]] = []  # (monotonic time, phrase) of this session's backchannels

    def configure(self, params: BackchannelParams) -> None:
        """New settings, from now on."""
        if params.phrases != self.params.phrases:
            self._phrases = itertools.cycle(params.phrases)
            self._audio = {k: v for k, v in self._audio.items() if k in params.phrases}
        self.params = params
        if params.enabled and self._started and any(p not in self._audio for p in params.phrases):
            self.create_task(self._render(), f"{self}::render")

    async def _render(self) -> None:
        """Synthesize the phrases once, in the TTS's voice (Piper's phrase cache shares them)."""
        render = getattr(self._tts, "render_phrase", None)
        if render is None:  # a TTS whose audio only comes as reply frames cannot lend it
            await self.push_error("the tts stage cannot render phrases on their own: no backchannels")
            return
        resampler = create_file_resampler()
        for text in list(self.params.phrases):
            if text in self._audio:
                continue
            try:
                pcm, rate = await render(text)
                pcm = await resampler.resample(pcm, rate, self._rate) if rate != self._rate else pcm
                # Whole 80 ms blocks: an output transport sends whole chunks (10-40 ms) and would
                # keep a remainder to play in front of the next reply.
                block = int(self._rate * 0.08) * 2
                self._audio[text] = pcm + b"\x00" * (-len(pcm) % block)
            except Exception as exc:  # a phrase that cannot be said is skipped, and the client told
                await self.push_error(f"cannot synthesize backchannel phrase {text!r}: {exc}")

    async def setup(self, setup: FrameProcessorSetup):
        await super().setup(setup)
        self._rate = setup.audio_out_sample_rate

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame):
            await self.push_frame(frame, direction)
            self._started = True
            if self.params.enabled:
                self.create_task(self._render(), f"{self}::render")
            return
        now = time.monotonic()
        if isinstance(frame, BotStartedSpeakingFrame):
            self._bot_speaking = True
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._bot_speaking = False
        elif isinstance(frame, UserStartedSpeakingFrame):
            self._in_turn, self._turn_count, self._speech_secs = True, 0, 0.0
            self._start_ticker()
        elif isinstance(frame, UserStoppedSpeakingFrame):
            self._in_turn = False
            await self._stop_ticker()
        elif isinstance(frame, VADUserStartedSpeakingFrame):
            self._speaking, self._speech_since, self._paused_at = True, now - frame.start_secs, None
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            if self._speech_since is not None:
                self._speech_secs += max(0.0, now - frame.stop_secs - self._speech_since)
            self._speaking, self._speech_since, self._paused_at = False, None, now - frame.stop_secs
        elif isinstance(frame, TurnPauseFrame):
            if frame.unfinished and not self._speaking and self._paused_at is not None:
                if (now - self._paused_at) * 1000 <= self.params.hard_deadline_ms:
                    await self._maybe_play(now)
            else:
                self._paused_at = None  # a pause judged finished is the reply's moment, not ours
        await self.push_frame(frame, direction)

    def _spoken_secs(self, now: float) -> float:
        return self._speech_secs + (now - self._speech_since if self._speech_since is not None else 0.0)

    async def _maybe_play(self, now: float) -> None:
        p = self.params
        if not p.enabled or not self._in_turn or self._bot_speaking or self._turn_count >= p.max_per_turn:
            return
        if self._spoken_secs(now) * 1000 < p.min_speech_ms:
            return
        if self._last is not None and (now - self._last) * 1000 < p.min_gap_ms:
            return
        text = next(self._phrases)
        audio = self._audio.get(text)
        if not audio:
            return  # not rendered yet (or it failed: logged then)
        self._last = now
        self._turn_count += 1
        self.played.append((now, text))
        del self.played[:-64]
        logger.debug(f"{self}: backchannel")
        frame = BackchannelAudioFrame(scale_audio(audio, p.volume_gain), sample_rate=self._rate, num_channels=1, text=text)
        await self.push_frame(frame)

    def _start_ticker(self) -> None:
        if self._ticker is None:
            self._ticker = self.create_task(self._tick(), f"{self}::tick")

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.params.eval_interval_ms / 1000)
            if self._speaking and not self.params.require_pause:
                await self._maybe_play(time.monotonic())

    async def _stop_ticker(self) -> None:
        task, self._ticker = self._ticker, None
        if task is not None:
            await self.cancel_task(task)

    async def cleanup(self):
        await super().cleanup()
        await self._stop_ticker()


def build(params: BackchannelParams, context: BuildContext) -> Stage:
    """A BackchannelInjector speaking with the pipeline's TTS (place it after the tts stage)."""
    injector = BackchannelInjector(params, tts=context.roles.tts)
    context.roles.backchannel = injector
    return Stage(injector)


def check(params: BackchannelParams, before: list[str]) -> list[tuple[str, str]]:
    if "tts" not in before:
        return [("type", "speaks with the session's voice, so the `backchannel` entry must come after a `tts` entry")]
    return []


SPEC = ProcessorSpec("backchannel", BackchannelParams, build, "Short acknowledgements ('mm-hm') while the user"
                     " talks (after tts).", check=check, hears_audio=False)
