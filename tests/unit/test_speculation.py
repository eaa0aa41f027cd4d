"""The context stage's speculative end of turn: the provisional user message is the one the
aggregator will write (pipecat's aggregator and run_test, no models)."""

from __future__ import annotations

from pipecat.frames.frames import (
    EagerTranscriptionFrame,
    LLMContextFrame,
    TranscriptionFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair, LLMUserAggregatorParams
from pipecat.tests.utils import SleepFrame, run_test
from pipecat.turns.user_start import ExternalUserTurnStartStrategy
from pipecat.turns.user_turn_strategies import UserTurnStrategies

from cadence.processors.speculation import AggregatedTextSpeculation


def aggregator():
    context = LLMContext()
    strategies = UserTurnStrategies(start=[ExternalUserTurnStartStrategy()],
                                    stop=[AggregatedTextSpeculation(timeout=0.5)])
    pair = LLMContextAggregatorPair(context, user_params=LLMUserAggregatorParams(user_turn_strategies=strategies))
    return context, pair.user()


async def test_the_speculation_carries_the_whole_turn_as_the_aggregator_writes_it():
    context, user = aggregator()
    frames = [UserStartedSpeakingFrame(), TranscriptionFrame(" I was thinking that maybe. ", "u", "t"),
              SleepFrame(0.1), EagerTranscriptionFrame(" We could go to the beach. ", "u", "t"), SleepFrame(0.1),
              TranscriptionFrame(" We could go to the beach. ", "u", "t"), SleepFrame(0.1), UserStoppedSpeakingFrame(),
              SleepFrame(0.8)]
    down, _ = await run_test(user, frames_to_send=frames, expected_down_frames=None)
    requests = [f for f in down if isinstance(f, LLMContextFrame)]
    assert [f.speculation for f in requests] == [True]  # the speculation held: no second request
    written = context.get_messages()  # the committed turn, as pipecat's aggregator wrote it
    assert len(written) == 1 and written[0]["content"].startswith("I was thinking that maybe.")
    assert requests[0].context.get_messages()[-1] == written[0]  # what was answered is what is kept


async def test_a_transcript_that_differs_asks_again():
    context, user = aggregator()
    frames = [UserStartedSpeakingFrame(), EagerTranscriptionFrame(" Tell me", "u", "t"), SleepFrame(0.1),
              TranscriptionFrame(" Tell me a story.", "u", "t"), SleepFrame(0.1), UserStoppedSpeakingFrame(),
              SleepFrame(0.8)]
    down, _ = await run_test(user, frames_to_send=frames, expected_down_frames=None)
    requests = [f for f in down if isinstance(f, LLMContextFrame)]
    assert [f.speculation for f in requests] == [True, False]
    assert requests[1].context.get_messages()[-1]["content"] == "Tell me a story."
