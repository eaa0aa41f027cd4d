"""Turn resumption in front of pipecat's user aggregator (run_test, no models): a turn the
user goes on with before any of its reply was heard becomes one user message."""

from __future__ import annotations

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    InterruptionFrame,
    LLMContextFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair, LLMUserAggregatorParams
from pipecat.tests.utils import SleepFrame, run_test
from pipecat.turns.user_start import ExternalUserTurnStartStrategy
from pipecat.turns.user_turn_strategies import UserTurnStrategies

from cadence.frames import TurnResumedFrame
from cadence.processors.resumption import TurnResumption
from cadence.processors.speculation import AggregatedTextSpeculation


def pipeline():
    context = LLMContext()
    strategies = UserTurnStrategies(start=[ExternalUserTurnStartStrategy()],
                                    stop=[AggregatedTextSpeculation(timeout=0.05)])
    pair = LLMContextAggregatorPair(context, user_params=LLMUserAggregatorParams(user_turn_strategies=strategies))
    resumption = TurnResumption(context)
    return context, resumption, Pipeline([resumption, pair.user()])


def turn(text: str, after: float = 0.3) -> list:
    return [UserStartedSpeakingFrame(), TranscriptionFrame(text, "u", "t"), SleepFrame(0.1),
            UserStoppedSpeakingFrame(), SleepFrame(after)]


async def test_going_on_before_the_reply_is_heard_makes_one_user_message():
    context, resumption, p = pipeline()
    frames = [*turn("I love autumn."), *turn("Do you have a favourite season?")]
    down, _ = await run_test(p, frames_to_send=frames, expected_down_frames=None)
    assert context.get_messages() == [{"role": "user", "content": "I love autumn. Do you have a favourite season?"}]
    assert resumption.resumed == 1
    assert any(isinstance(f, TurnResumedFrame) for f in down) and any(isinstance(f, InterruptionFrame) for f in down)
    requests = [f for f in down if isinstance(f, LLMContextFrame)]
    assert len(requests) == 2  # the first was interrupted; the second answers the whole turn


async def test_a_reply_that_was_heard_ends_the_turn_for_good():
    context, resumption, p = pipeline()
    frames = [*turn("I love autumn."), BotStartedSpeakingFrame(), SleepFrame(0.05), *turn("Do you like it?")]
    await run_test(p, frames_to_send=frames, expected_down_frames=None)
    assert [m["content"] for m in context.get_messages()] == ["I love autumn.", "Do you like it?"]
    assert resumption.resumed == 0


async def test_going_on_before_the_turn_was_even_written_loses_nothing():
    context, resumption, p = pipeline()
    frames = [*turn("I love autumn.", after=0.01), *turn("Do you have a favourite season?")]
    await run_test(p, frames_to_send=frames, expected_down_frames=None)
    assert context.get_messages() == [{"role": "user", "content": "I love autumn. Do you have a favourite season?"}]
