"""End of turn from sound and words: smart-turn's audio probability fused with a text
end-of-utterance score of the transcript heard so far.

pipecat's ``TurnAnalyzerUserTurnStopStrategy`` ends the turn on the audio model's verdict
alone (its transcript only gates timing), so "Nova," — a name, then the pause a comma
makes — ends a turn. This strategy, placed after the STT stage, waits at each VAD stop for
that segment's transcript, scores the whole turn's words, and ends the turn at once when
the fused score clears the threshold; otherwise it waits longer the lower the score is
(up to ``stop_secs``), and speech that resumes in the meantime continues the same turn.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from dataclasses import dataclass
from typing import Any

from loguru import logger
from pipecat.audio.turn.base_turn_analyzer import EndOfTurnState
from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    MetricsFrame,
    SpeechControlParamsFrame,
    StartFrame,
    STTMetadataFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameProcessorSetup
from pipecat.turns.types import ProcessFrameResult
from pipecat.turns.user_stop.base_user_turn_stop_strategy import BaseUserTurnStopStrategy

from cadence.frames import ReplyHoldFrame, TurnPauseFrame

# The text score (text_turn: a mark or the end after the words) is bimodal (fragments ≤ ~4e-4,
# finished sentences ~7e-4 to 0.7, mostly above 1e-2): read it on a log scale, 2e-4 → 0, 5e-2 → 1.
TEXT_FLOOR, TEXT_CEILING = 2e-4, 5e-2


def text_confidence(p_text: float) -> float:
    """The text end-of-utterance probability mapped onto 0..1 (log scale)."""
    if p_text <= TEXT_FLOOR:
        return 0.0
    return min(1.0, math.log(p_text / TEXT_FLOOR) / math.log(TEXT_CEILING / TEXT_FLOOR))


# One-word turns that are complete by themselves; any other lone word ("Nova.", "So.",
# "Um.") opens a sentence more often than it ends one, whatever punctuation Whisper gave it.
COMPLETE_ONE_WORD = frozenset(
    "yes yeah yep no nope okay ok sure thanks thank hello hi hey bye goodbye goodnight right fine great cool "
    "nothing maybe please sorry what why how when where who really absolutely definitely".split())
COMPLETE_TAILS = frozenset("please thanks too though then now again".split())
_WORD = re.compile(r"[\w']+")


def form_adjusted(text: str, p_text: float) -> float:
    """The text score, held near 0 for a turn whose form says it is unfinished: one that trails
    off ("...", a comma, a dash; the LM reads "cook is..." as finished) or a lone word that
    is not a complete answer by itself (a name said to get attention: "Nova." + a pause; held
    less low, so "Paris." as an answer waits a second rather than the longest wait)."""
    stripped = text.rstrip()
    if stripped.endswith(("...", "…", ",", "-", "—", "–")):
        return min(p_text, TEXT_FLOOR / 10)
    words = _WORD.findall(stripped.lower())
    # "Nova, …" misheard as two words ("No, B."): a comma after one word, then a word that does
    # not close a reply by itself ("Yes, please." does), is an opener like a lone name.
    opener = len(words) == 2 and "," in stripped and words[1] not in COMPLETE_ONE_WORD | COMPLETE_TAILS
    if (len(words) == 1 and words[0] not in COMPLETE_ONE_WORD) or opener:
        # Held low, not to nothing: a one-word answer ("Paris.") still ends its turn, after a
        # second or so of silence (the graded wait), not after the longest one.
        return min(p_text, 2 * TEXT_FLOOR)
    return p_text


def fused_score(p_audio: float, p_text: float | None, text_weight: float) -> float:
    """A weighted geometric mean of the audio probability and the text confidence: either
    one near 0 holds the turn open. Without a transcript (or a scorer), the audio alone."""
    if p_text is None or text_weight <= 0:
        return p_audio
    return (max(p_audio, 0.0) ** (1 - text_weight)) * (text_confidence(p_text) ** text_weight)


def wait_after_stop(score: float, threshold: float, stop_secs: float) -> float:
    """Silence to wait for after the VAD stop before ending the turn: none when the score
    clears the threshold, growing to ``stop_secs`` as it falls to 0. A threshold of 1 means
    "never confident" (Realtime's ``endOfTurnConfidenceThreshold: 1``): always the longest wait."""
    if threshold >= 1:
        return stop_secs
    if score >= threshold or threshold <= 0:
        return 0.0
    return stop_secs * (1 - score / threshold)


@dataclass
class TurnVerdict:
    """How the last end-of-turn check went (for metrics and logs; holds no user text)."""

    p_audio: float
    p_text: float | None
    score: float
    wait_secs: float
    decided_after_secs: float  # from the VAD stop to the decision


class FusedTurnStopStrategy(BaseUserTurnStopStrategy):
    """Ends the user's turn when sound (smart-turn) and words (a text scorer) agree it is over.

    Needs the STT stage upstream (its transcripts). ``scorer`` is any object with an async
    ``ascore(text) -> float`` (``cadence.processors.text_turn.TextTurnScorer``); without one
    the audio probability decides alone, with the same graded wait.
    """

    def __init__(self, *, analyzer: Any, scorer: Any = None, threshold: float = 0.5, text_weight: float = 0.5,
                 statement_wait_secs: float = 0.0, **kwargs: Any):
        super().__init__(**kwargs)
        self._analyzer = analyzer  # cadence.processors.smart_turn.SmartTurnAnalyzer
        self._scorer = scorer
        self.threshold = threshold
        self.text_weight = text_weight
        self.statement_wait_secs = statement_wait_secs
        self.hold_replies = True  # a TTS downstream holds replies (ReplyHoldFrame); the session says
        self.last_verdict: TurnVerdict | None = None
        self._stt_wait = 0.8  # STTMetadataFrame's p99 latency replaces it
        self._speaking = False
        self._texts: list[str] = []
        self._transcribed = asyncio.Event()
        self._decision: asyncio.Task | None = None

    @property
    def stop_secs(self) -> float:
        """The longest silence after which the turn ends whatever the scores say."""
        return self._analyzer.stop_secs

    def configure(self, *, threshold: float, stop_secs: float) -> None:
        """Change the fused-score threshold and the longest wait, effective for the next turn."""
        self.threshold = threshold
        self._analyzer.configure(threshold=self._analyzer.threshold, stop_secs=stop_secs)

    async def setup(self, setup: FrameProcessorSetup):
        await super().setup(setup)
        self._analyzer.set_sample_rate(setup.audio_in_sample_rate)

    async def handle_user_turn_started(self):
        await self._reset()

    async def handle_user_turn_stopped(self):
        await self._reset()
        self._analyzer.clear()

    async def cleanup(self):
        await super().cleanup()
        await self._cancel_decision()
        await self._analyzer.cleanup()

    async def process_frame(self, frame: Frame) -> ProcessFrameResult:
        await super().process_frame(frame)
        if isinstance(frame, StartFrame):
            await self.broadcast_frame(SpeechControlParamsFrame, turn_params=self._analyzer.params)
        elif isinstance(frame, STTMetadataFrame):
            self._stt_wait = frame.ttfs_p99_latency
        elif isinstance(frame, VADUserStartedSpeakingFrame):
            self._analyzer.update_vad_start_secs(frame.start_secs)
            self._speaking = True
            self._transcribed.clear()
            await self._cancel_decision()  # the user goes on: this turn continues
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            self._speaking = False
            await self._cancel_decision()
            self._decision = self.task_manager.create_task(self._decide(frame), f"{self}::decide")
        elif isinstance(frame, InputAudioRawFrame):
            state = self._analyzer.append_audio(frame.audio, self._speaking)
            if state == EndOfTurnState.COMPLETE and not self._speaking:  # the longest silence has passed
                await self._end()
        elif isinstance(frame, TranscriptionFrame):
            if frame.text.strip():
                self._texts.append(frame.text.strip())
            self._transcribed.set()
        return ProcessFrameResult.CONTINUE

    async def _decide(self, frame: VADUserStoppedSpeakingFrame) -> None:
        stopped = time.monotonic()
        _, metrics = await self._analyzer.analyze_end_of_turn()
        if metrics is not None:
            await self.push_frame(MetricsFrame(data=[metrics]))
        p_audio = self._analyzer.last_probability or 0.0
        # This segment's transcript (Whisper runs at the VAD stop), within the STT's p99.
        try:
            await asyncio.wait_for(self._transcribed.wait(), max(0.05, self._stt_wait - frame.stop_secs))
        except TimeoutError:
            pass
        text = " ".join(self._texts)
        p_text = None
        if self._scorer is not None and _WORD.search(text):  # marks alone ("?"): audio decides
            try:
                p_text = form_adjusted(text, await self._scorer.ascore(text))
            except Exception as exc:  # a failing scorer must not end (or hang) turns: audio decides
                logger.warning(f"{self}: text turn score failed ({exc}); deciding on audio alone")
        score = fused_score(p_audio, p_text, self.text_weight)
        wait = wait_after_stop(score, self.threshold, self.stop_secs)
        hold = 0.0
        if p_text is not None and text.rstrip().endswith(".") and 0 < self.threshold < 1:
            # A statement more often goes on than a question does: its reply is made at once
            # but not heard before this much silence (reply_hold.py), unless speech resumes;
            # where no TTS holds replies (text replies), the turn itself waits, as it did.
            if self.hold_replies:
                hold = max(0.0, self.statement_wait_secs - wait)
            else:
                wait = max(wait, self.statement_wait_secs)
        self.last_verdict = TurnVerdict(p_audio, p_text, score, wait, time.monotonic() - stopped)
        logger.debug(f"{self}: end of turn p_audio={p_audio:.3f} p_text={p_text} score={score:.3f} wait={wait:.2f}s")
        # Listeners (backchannels) may speak into a pause the model holds open.
        unfinished = self.threshold >= 1 or score < self.threshold
        await self.push_frame(TurnPauseFrame(unfinished=unfinished, score=score, wait_secs=wait))
        if wait > 0:
            await asyncio.sleep(wait)
        self._decision = None  # ending the turn resets this strategy, which must not cancel itself
        if self.hold_replies and not self._speaking:  # even with no hold, its first audio waits out speech beginning
            await self.push_frame(ReplyHoldFrame(until=time.monotonic() + hold))
        await self._end()

    async def _end(self) -> None:
        if self._speaking:
            return
        await self.trigger_user_turn_stopped()

    async def _reset(self) -> None:
        self._texts = []
        self._transcribed.clear()
        await self._cancel_decision()

    async def _cancel_decision(self) -> None:
        task, self._decision = self._decision, None
        if task is not None and task is not asyncio.current_task():
            await self.task_manager.cancel_task(task)

