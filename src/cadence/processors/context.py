"""``context``: the conversation context (pipecat's LLMContextAggregatorPair).

The user half sits here in the pipeline and turns transcripts into user messages; the
assistant half goes after the transport output, so a reply cut short by barge-in is
stored as far as it was spoken. The system prompt is the first message and never
changes position (the llm stage prepends it), so the prompt stays prefix-stable turn after
turn (KV-cache reuse).
"""

from __future__ import annotations

from pydantic import Field

from cadence.memory import RollingSummary
from cadence.memory.cards import Character
from cadence.processors.context_window import ContextWindow
from cadence.stages import BuildContext, ProcessorSpec, Spec, Stage


class ContextParams(Spec):
    """Params of the ``context`` stage."""

    transcript_wait_secs: float = Field(
        0.1, ge=0, description="After the turn ends, how long to wait for more transcript before replying."
    )
    user_turn_stop_timeout: float = Field(
        30.0, gt=0, description="End a user turn nothing else ended after this (a safety net: the turn stage ends"
        " turns; a short value would end one in a mid-sentence pause)."
    )
    fold_to: float = Field(
        0.4, ge=0.2, le=0.9, description="When a request would overflow the model's window, the oldest turns leave"
        " the context until it fills this share of the room; they are folded into the rolling summary."
    )
    summary_model: str | None = Field(
        None, description="'provider/model' that writes the rolling summary; default: the session's model."
    )
    resume_turns: bool = Field(
        True, description="Speech that follows the end of a turn before any of its reply was heard continues that"
        " turn: the reply is dropped and one user message holds the whole transcript.")
    summary_max_tokens: int = Field(160, ge=16, le=2048, description="Longest rolling summary, in tokens.")


def build(params: ContextParams, context: BuildContext) -> Stage:
    """A context aggregator pair ; the persona lives in the llm stage."""
    from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
    from pipecat.processors.aggregators.llm_context import LLMContext
    from pipecat.processors.aggregators.llm_response_universal import (
        LLMContextAggregatorPair,
        LLMUserAggregatorParams,
    )
    from pipecat.turns.user_start import ExternalUserTurnStartStrategy
    from pipecat.turns.user_turn_strategies import UserTurnStrategies

    from cadence.processors.resumption import TurnResumption
    from cadence.processors.speculation import AggregatedTextSpeculation


    strategies = None  # pipecat's defaults: VAD starts a turn, smart-turn ends it
    if context.has_stage("turn"):
        # A `turn` stage upstream already decides when turns start and stop. The eager
        # strategy is the external one that also starts a held reply on the stt stage's
        # eager transcripts (stt `eager_end_of_turn`); without them it is the external one.
        strategies = UserTurnStrategies(
            start=[ExternalUserTurnStartStrategy()],
            stop=[AggregatedTextSpeculation(timeout=params.transcript_wait_secs)],
        )
    # The system prompt is the llm stage's `system_instruction`, so it is always first.
    schemas = context.tools.schemas() if context.tools is not None else []
    llm_context = LLMContext(tools=ToolsSchema(standard_tools=schemas)) if schemas else LLMContext()
    pair = LLMContextAggregatorPair(
        llm_context,
        user_params=LLMUserAggregatorParams(
            user_turn_strategies=strategies, user_turn_stop_timeout=params.user_turn_stop_timeout
        ),
    )
    user, assistant = pair.user(), pair.assistant()
    roles = context.roles
    roles.llm_context, roles.user_aggregator, roles.assistant_aggregator = llm_context, user, assistant
    if params.summary_model:
        context.router.check_model(params.summary_model)
    summary = RollingSummary(
        context.router, user=context.user_id, max_tokens=params.summary_max_tokens,
        model=lambda: params.summary_model or roles.llm.settings.model,
    )
    memory = context.memory.for_session(summary) if context.memory is not None else None
    roles.context_window = window = ContextWindow(context.router, summary, fold_to=params.fold_to,
                                                  user=context.user_id, memory=memory, llm_context=llm_context,
                                                  named_user=context.named_user)
    if context.character is not None:
        window.character = Character(context.character)

    @assistant.event_handler("on_assistant_turn_stopped")
    async def fold_between_turns(aggregator, message):
        await window.between_turns()
    head = [TurnResumption(llm_context)] if params.resume_turns else []
    roles.resumption = head[0] if head else None
    return Stage(user, tail=[assistant], head=head)


def warm(params: ContextParams, context: BuildContext) -> None:
    """Load the summary model once per process and prefill the summariser's own prompt (its
    compute buffers are allocated then, not in the middle of a session)."""
    if params.summary_model:
        context.router.warm(params.summary_model, RollingSummary.prompt_prefix(params.summary_max_tokens))


SPEC = ProcessorSpec("context", ContextParams, build, "Conversation memory: user and assistant turns in order.",
                     # with no turn stage, pipecat's own end-of-turn rule (smart-turn) runs in the
                     # user aggregator, and it needs the audio
                     warm=warm, hears_audio=lambda stages: "turn" not in stages)
