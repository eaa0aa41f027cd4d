"""``context``: the conversation context (pipecat's LLMContextAggregatorPair).

The user half sits here in the pipeline and turns transcripts into user messages; the
assistant half goes after the transport output, so a reply cut short by barge-in is
stored as far as it was spoken. The system prompt is the first message and never
changes position (the llm stage prepends it), so the prompt stays prefix-stable turn after
turn (KV-cache reuse).
"""

from __future__ import annotations

from pydantic import Field

from cadence.stages import BuildContext, ProcessorSpec, Spec, Stage


class ContextParams(Spec):
    """Params of the ``context`` stage."""

    transcript_wait_secs: float = Field(
        0.1, ge=0, description="After the turn ends, how long to wait for more transcript before replying."
    )
    user_turn_stop_timeout: float = Field(5.0, gt=0, description="End a user turn nothing else ended after this.")


def build(params: ContextParams, context: BuildContext) -> Stage:
    """A context aggregator pair ; the persona lives in the llm stage."""
    from pipecat.processors.aggregators.llm_context import LLMContext
    from pipecat.processors.aggregators.llm_response_universal import (
        LLMContextAggregatorPair,
        LLMUserAggregatorParams,
    )
    from pipecat.turns.user_start import ExternalUserTurnStartStrategy
    from pipecat.turns.user_stop import ExternalUserTurnStopStrategy
    from pipecat.turns.user_turn_strategies import UserTurnStrategies


    strategies = None  # pipecat's defaults: VAD starts a turn, smart-turn ends it
    if context.has_stage("turn"):
        # A `turn` stage upstream already decides when turns start and stop.
        strategies = UserTurnStrategies(
            start=[ExternalUserTurnStartStrategy()],
            stop=[ExternalUserTurnStopStrategy(timeout=params.transcript_wait_secs)],
        )
    # The system prompt is the llm stage's `system_instruction`, so it is always first.
    llm_context = LLMContext()
    pair = LLMContextAggregatorPair(
        llm_context,
        user_params=LLMUserAggregatorParams(
            user_turn_strategies=strategies, user_turn_stop_timeout=params.user_turn_stop_timeout
        ),
    )
    user, assistant = pair.user(), pair.assistant()
    roles = context.roles
    roles.llm_context, roles.user_aggregator, roles.assistant_aggregator = llm_context, user, assistant
    return Stage(user, tail=[assistant])


SPEC = ProcessorSpec("context", ContextParams, build, "Conversation memory: user and assistant turns in order.")
