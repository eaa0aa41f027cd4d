"""The fused end-of-turn decision, model-free: the scores' arithmetic, and the strategy in
pipecat's own UserTurnProcessor with a scripted analyzer and scorer (test doubles)."""

from __future__ import annotations

import math

import asyncio
import time

import pytest
from pipecat.audio.turn.base_turn_analyzer import EndOfTurnState
from pipecat.audio.turn.smart_turn.base_smart_turn import SmartTurnParams
from pipecat.frames.frames import (
    InputAudioRawFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.tests.utils import SleepFrame, run_test
from pipecat.turns.user_turn_processor import UserTurnProcessor
from pipecat.turns.user_turn_strategies import UserTurnStrategies

from cadence.frames import ReplyHoldFrame
from cadence.processors.smart_turn import SwitchableVADTurnStart
from cadence.processors.turn_decision import (
    FusedTurnStopStrategy,
    fused_score,
    text_confidence,
    wait_after_stop,
)


def test_text_confidence_reads_the_bimodal_score_on_a_log_scale():
    assert text_confidence(0.0) == 0.0 and text_confidence(1e-6) == 0.0
    assert text_confidence(0.5) == 1.0 and text_confidence(0.05) == pytest.approx(1.0)
    assert text_confidence(1e-3) == pytest.approx(math.log(5) / math.log(250))


def test_either_score_near_zero_holds_the_turn_open():
    assert fused_score(0.95, 1e-7, 0.5) == 0.0  # "Nova," sounds finished but reads unfinished
    assert fused_score(0.0, 0.9, 0.5) == 0.0
    assert fused_score(0.9, 0.9, 0.5) == pytest.approx(0.9 ** 0.5)
    assert fused_score(0.7, None, 0.5) == 0.7  # no transcript: the audio alone
    assert fused_score(0.7, 1e-7, 0.0) == 0.7  # text weight 0: the audio alone


def test_the_wait_grows_as_the_score_falls():
    assert wait_after_stop(0.6, 0.5, 3.0) == 0.0
    assert wait_after_stop(0.0, 0.5, 3.0) == 3.0
    assert wait_after_stop(0.25, 0.5, 3.0) == pytest.approx(1.5)
    assert wait_after_stop(0.1, 0.0, 3.0) == 0.0
    assert wait_after_stop(0.99, 1.0, 3.0) == 3.0  # a threshold of 1: never confident


class ScriptedAnalyzer:
    """A smart-turn stand-in whose audio probability is fixed (a test double)."""

    def __init__(self, probability: float, stop_secs: float = 3.0):
        self.probability, self.threshold, self.last_probability = probability, 1.0, None
        self.params = SmartTurnParams(stop_secs=stop_secs)
        self.cleared = 0

    stop_secs = property(lambda self: self.params.stop_secs)

    def set_sample_rate(self, rate): ...
    def update_vad_start_secs(self, secs): ...
    def append_audio(self, audio, is_speech):
        return EndOfTurnState.INCOMPLETE

    async def analyze_end_of_turn(self):
        self.last_probability = self.probability
        return EndOfTurnState.INCOMPLETE, None

    def configure(self, *, threshold, stop_secs):
        self.threshold, self.params.stop_secs = threshold, stop_secs

    def clear(self):
        self.cleared += 1

    async def cleanup(self): ...


class ScriptedScorer:
    """A text scorer that says which transcripts are finished (a test double)."""

    def __init__(self, finished: set[str]):
        self.finished, self.asked = finished, []

    async def ascore(self, text: str) -> float:
        self.asked.append(text)
        return 0.9 if text in self.finished else 1e-7


def turn_processor(strategy) -> UserTurnProcessor:
    return UserTurnProcessor(user_turn_strategies=UserTurnStrategies(
        start=[SwitchableVADTurnStart()], stop=[strategy]), user_turn_stop_timeout=30)


def spoken(text: str, pause: float) -> list:
    audio = InputAudioRawFrame(bytes(640), sample_rate=16000, num_channels=1)
    return [VADUserStartedSpeakingFrame(start_secs=0.2), audio, SleepFrame(0.05),
            VADUserStoppedSpeakingFrame(stop_secs=0.2), SleepFrame(0.05), TranscriptionFrame(text, "u", "t"),
            SleepFrame(pause)]


def turn_frames(frames) -> list[str]:
    return [type(f).__name__ for f in frames if isinstance(f, (UserStartedSpeakingFrame, UserStoppedSpeakingFrame))]


async def test_a_name_then_a_pause_does_not_end_the_turn():
    scorer = ScriptedScorer({"Nova, tell me about the moon."})
    strategy = FusedTurnStopStrategy(analyzer=ScriptedAnalyzer(0.95, stop_secs=1.0), scorer=scorer, threshold=0.5)
    frames = [*spoken("Nova,", 0.6), *spoken("tell me about the moon.", 0.2)]
    down, _ = await run_test(turn_processor(strategy), frames_to_send=frames)
    assert turn_frames(down) == ["UserStartedSpeakingFrame", "UserStoppedSpeakingFrame"]
    assert scorer.asked == ["Nova,", "Nova, tell me about the moon."]  # the whole turn's words are scored
    assert strategy.last_verdict.score > 0.5 and strategy.last_verdict.wait_secs == 0.0


async def test_a_finished_sentence_ends_the_turn_at_once():
    strategy = FusedTurnStopStrategy(analyzer=ScriptedAnalyzer(0.9), scorer=ScriptedScorer({"What time is it?"}))
    down, _ = await run_test(turn_processor(strategy), frames_to_send=spoken("What time is it?", 0.2))
    assert turn_frames(down) == ["UserStartedSpeakingFrame", "UserStoppedSpeakingFrame"]
    assert strategy.last_verdict.decided_after_secs < 0.2


async def test_an_unfinished_turn_ends_after_the_longest_wait():
    strategy = FusedTurnStopStrategy(analyzer=ScriptedAnalyzer(0.9, stop_secs=0.4), scorer=ScriptedScorer(set()))
    down, _ = await run_test(turn_processor(strategy), frames_to_send=spoken("I went to the", 0.15))
    assert turn_frames(down) == ["UserStartedSpeakingFrame"]  # still waiting
    strategy = FusedTurnStopStrategy(analyzer=ScriptedAnalyzer(0.9, stop_secs=0.4), scorer=ScriptedScorer(set()))
    down, _ = await run_test(turn_processor(strategy), frames_to_send=spoken("I went to the", 0.8))
    assert turn_frames(down) == ["UserStartedSpeakingFrame", "UserStoppedSpeakingFrame"]
    assert strategy.last_verdict.wait_secs == pytest.approx(0.4)


async def test_a_failing_scorer_leaves_the_decision_to_the_audio():
    class Broken:
        async def ascore(self, text):
            raise RuntimeError("no model")

    strategy = FusedTurnStopStrategy(analyzer=ScriptedAnalyzer(0.9), scorer=Broken())
    down, _ = await run_test(turn_processor(strategy), frames_to_send=spoken("Hello there.", 0.2))
    assert turn_frames(down) == ["UserStartedSpeakingFrame", "UserStoppedSpeakingFrame"]
    assert strategy.last_verdict.p_text is None


async def test_a_segment_without_a_transcript_is_decided_on_audio_after_the_stt_wait():
    # Whisper heard nothing (or failed): the turn must still end, on the audio alone.
    strategy = FusedTurnStopStrategy(analyzer=ScriptedAnalyzer(0.9), scorer=ScriptedScorer(set()))
    audio = InputAudioRawFrame(bytes(640), sample_rate=16000, num_channels=1)
    frames = [VADUserStartedSpeakingFrame(start_secs=0.2), audio, SleepFrame(0.05),
              VADUserStoppedSpeakingFrame(stop_secs=0.2), SleepFrame(1.0)]
    down, _ = await run_test(turn_processor(strategy), frames_to_send=frames)
    assert turn_frames(down) == ["UserStartedSpeakingFrame", "UserStoppedSpeakingFrame"]
    assert strategy.last_verdict.p_text is None and strategy.last_verdict.score == 0.9


async def test_configure_moves_the_threshold_and_the_longest_wait():
    analyzer = ScriptedAnalyzer(0.9)
    strategy = FusedTurnStopStrategy(analyzer=analyzer)
    strategy.configure(threshold=0.8, stop_secs=1.5)
    assert (strategy.threshold, strategy.stop_secs, analyzer.threshold) == (0.8, 1.5, 1.0)


def test_an_unfinished_form_holds_the_text_score_down():
    from cadence.processors.turn_decision import TEXT_FLOOR, form_adjusted

    assert form_adjusted("My favorite thing to cook is...", 0.16) < TEXT_FLOOR  # trails off
    assert form_adjusted("Nova,", 0.5) < TEXT_FLOOR  # a name, then the pause a comma makes
    assert TEXT_FLOOR < form_adjusted("Nova.", 0.018) <= 2 * TEXT_FLOOR  # a word alone: held low, not to 0
    assert form_adjusted("No, B.", 0.08) <= 2 * TEXT_FLOOR  # "Nova," misheard: an opener, held like a name
    assert form_adjusted("Yes, please.", 0.5) == 0.5 and form_adjusted("No, thanks.", 0.5) == 0.5
    assert form_adjusted("Yes.", 0.9) == 0.9 and form_adjusted("What is the capital of France?", 0.99) == 0.99


async def test_a_statement_ends_at_once_but_its_reply_is_held_a_little_longer_than_a_question_s():
    scorer = ScriptedScorer({"I love autumn.", "Do you?"})
    statement = FusedTurnStopStrategy(analyzer=ScriptedAnalyzer(0.9), scorer=scorer, statement_wait_secs=0.3)
    before = time.monotonic()
    down, _ = await run_test(turn_processor(statement), frames_to_send=spoken("I love autumn.", 0.1))
    # Ended at once (the reply is made meanwhile), its reply held until 0.3 s after the decision.
    assert turn_frames(down) == ["UserStartedSpeakingFrame", "UserStoppedSpeakingFrame"]
    holds = [f for f in down if isinstance(f, ReplyHoldFrame)]
    assert len(holds) == 1 and before + 0.3 < holds[0].until < time.monotonic() + 0.3
    kinds = [type(f).__name__ for f in down]
    assert kinds.index("ReplyHoldFrame") < kinds.index("UserStoppedSpeakingFrame")  # armed before the reply starts
    assert statement.last_verdict.wait_secs == 0.0
    question = FusedTurnStopStrategy(analyzer=ScriptedAnalyzer(0.9), scorer=scorer, statement_wait_secs=0.3)
    down, _ = await run_test(turn_processor(question), frames_to_send=spoken("Do you?", 0.1))
    assert turn_frames(down) == ["UserStartedSpeakingFrame", "UserStoppedSpeakingFrame"]
    decided = time.monotonic()  # a question's reply is held by nothing but speech beginning
    assert [f.until < decided for f in down if isinstance(f, ReplyHoldFrame)] == [True]
    eager = FusedTurnStopStrategy(analyzer=ScriptedAnalyzer(0.9), scorer=scorer, threshold=0.0, statement_wait_secs=0.3)
    down, _ = await run_test(turn_processor(eager), frames_to_send=spoken("I love autumn.", 0.1))
    assert turn_frames(down) == ["UserStartedSpeakingFrame", "UserStoppedSpeakingFrame"]  # threshold 0: at once
    assert [f.until < time.monotonic() for f in down if isinstance(f, ReplyHoldFrame)] == [True]

async def test_where_no_tts_holds_replies_a_statement_s_turn_waits_itself():
    strategy = FusedTurnStopStrategy(analyzer=ScriptedAnalyzer(0.9), scorer=ScriptedScorer({"I love autumn."}),
                                     statement_wait_secs=0.3)
    strategy.hold_replies = False  # e.g. a text-only session: nothing would hold the reply
    down, _ = await run_test(turn_processor(strategy), frames_to_send=spoken("I love autumn.", 0.1))
    assert turn_frames(down) == ["UserStartedSpeakingFrame"]  # not yet: a second sentence may follow
    assert strategy.last_verdict.wait_secs == pytest.approx(0.3)
    assert not [f for f in down if isinstance(f, ReplyHoldFrame)]
