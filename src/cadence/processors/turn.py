"""``turn``: end-of-turn detection with smart-turn v3 (pipecat's UserTurnProcessor)."""

from __future__ import annotations

from pydantic import Field

from cadence.stages import BuildContext, ProcessorSpec, Spec, Stage


class TurnParams(Spec):
    """Params of the ``turn`` stage."""

    model: str = Field("smart-turn-v3", description="Packaged smart-turn model or a path to its .onnx file.")
    threshold: float = Field(
        0.5, ge=0, le=1, description="End-of-turn confidence: probability above which the user's turn is complete."
    )
    stop_secs: float = Field(3.0, gt=0, description="Silence after which the turn ends whatever the model says.")
    pre_speech_ms: float = Field(500, ge=0, description="Audio before speech start given to the model.")
    max_duration_secs: float = Field(8.0, gt=0, description="Longest audio segment the model looks at.")
    stop_timeout_secs: float = Field(5.0, gt=0, description="Safety net: end a turn that nothing ended after this.")
    interruptions: bool = Field(True, description="Whether user speech interrupts the bot (barge-in).")


def build(params: TurnParams, context: BuildContext) -> Stage:
    """A UserTurnProcessor: VAD starts the turn, smart-turn ends it."""
    from pipecat.turns.user_stop import TurnAnalyzerUserTurnStopStrategy
    from pipecat.turns.user_turn_processor import UserTurnProcessor
    from pipecat.turns.user_turn_strategies import UserTurnStrategies

    from pipecat.audio.turn.smart_turn.base_smart_turn import SmartTurnParams

    from cadence.processors.smart_turn import SmartTurnAnalyzer, SwitchableVADTurnStart

    analyzer = SmartTurnAnalyzer(
        session=context.store.smart_turn_session(params.model),
        threshold=params.threshold,
        params=SmartTurnParams(
            stop_secs=params.stop_secs, pre_speech_ms=params.pre_speech_ms, max_duration_secs=params.max_duration_secs
        ),
    )
    start = SwitchableVADTurnStart(interruptions=params.interruptions)
    strategies = UserTurnStrategies(
        start=[start],
        # Transcripts flow downstream of this stage, so it decides on audio alone; the
        # context stage waits for the transcript before asking the LLM.
        stop=[TurnAnalyzerUserTurnStopStrategy(turn_analyzer=analyzer, wait_for_transcript=False)],
    )
    processor = UserTurnProcessor(user_turn_strategies=strategies, user_turn_stop_timeout=params.stop_timeout_secs)
    context.roles.turn, context.roles.turn_analyzer, context.roles.turn_start = processor, analyzer, start
    return Stage(processor)


SPEC = ProcessorSpec("turn", TurnParams, build, "Smart-turn v3 end-of-turn detection with a tunable threshold.")
