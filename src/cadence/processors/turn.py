"""``turn``: end-of-turn detection (pipecat's UserTurnProcessor): smart-turn v3 on the
audio, fused with a text end-of-utterance score of the transcript when ``text_model`` is
set (the stage then goes after ``stt``, whose transcripts it reads)."""

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
    stop_timeout_secs: float = Field(
        30.0, gt=0, description="Safety net: end a turn that nothing ended after this (counted from the turn's start"
        " or its last check, and only while the user is silent)."
    )
    interruptions: bool = Field(True, description="Whether user speech interrupts the bot (barge-in).")
    text_model: str | None = Field(
        None, description="Packaged ChatML model (or .gguf path) whose probability of the user's message ending"
        " after the transcript joins smart-turn's (null: audio alone). Needs an `stt` entry before this one."
    )
    text_weight: float = Field(0.5, ge=0, le=1, description="Weight of the text score in the fused end-of-turn score.")
    statement_wait_secs: float = Field(
        0.5, ge=0, le=3, description="With text_model: after a statement ('.') the turn ends at once but the"
        " reply is not heard before this much more silence, so a second sentence still joins the turn (the reply"
        " is made meanwhile; 0 = none).")


def build(params: TurnParams, context: BuildContext) -> Stage:
    """A UserTurnProcessor: VAD starts the turn; smart-turn (with the words, if scored) ends it."""
    from pipecat.audio.turn.smart_turn.base_smart_turn import SmartTurnParams
    from pipecat.turns.user_stop import TurnAnalyzerUserTurnStopStrategy
    from pipecat.turns.user_turn_processor import UserTurnProcessor
    from pipecat.turns.user_turn_strategies import UserTurnStrategies

    from cadence.processors.smart_turn import SmartTurnAnalyzer, SwitchableVADTurnStart
    from cadence.processors.turn_decision import FusedTurnStopStrategy

    fused = params.text_model is not None
    analyzer = SmartTurnAnalyzer(
        session=context.store.smart_turn_session(params.model),
        # Fused: the strategy owns the threshold; the analyzer only reports its probability
        # (and keeps the turn's audio across pauses, which a verdict of its own would clear).
        threshold=1.0 if fused else params.threshold,
        params=SmartTurnParams(
            stop_secs=params.stop_secs, pre_speech_ms=params.pre_speech_ms, max_duration_secs=params.max_duration_secs
        ),
    )
    start = SwitchableVADTurnStart(interruptions=params.interruptions)
    if fused:
        stop = FusedTurnStopStrategy(analyzer=analyzer, scorer=_scorer(params, context), threshold=params.threshold,
                                     text_weight=params.text_weight, statement_wait_secs=params.statement_wait_secs)
        stop.hold_replies = context.has_stage("tts")  # the built-in tts holds replies (reply_hold.py)
        tuner = stop
    else:
        # No transcripts here (the stage is before STT): it decides on audio alone, and the
        # context stage waits for the transcript before asking the LLM.
        stop = TurnAnalyzerUserTurnStopStrategy(turn_analyzer=analyzer, wait_for_transcript=False)
        tuner = analyzer
    strategies = UserTurnStrategies(start=[start], stop=[stop])
    processor = UserTurnProcessor(user_turn_strategies=strategies, user_turn_stop_timeout=params.stop_timeout_secs)
    context.roles.turn, context.roles.turn_analyzer, context.roles.turn_start = processor, tuner, start
    return Stage(processor)


def _scorer(params: TurnParams, context: BuildContext):
    from cadence.processors.text_turn import shared_scorer

    return shared_scorer(context.store, params.text_model)


def warm(params: TurnParams, context: BuildContext) -> None:
    """Load the text scorer (and prefill its prompt) before the first session."""
    if params.text_model is not None:
        _scorer(params, context)


def check(params: TurnParams, before: list[str]) -> list[tuple[str, str]]:
    from pathlib import Path

    from cadence.models import PACKAGED_MODELS, SPLIT_MODELS

    if params.text_model is None:
        return []
    problems = []
    if params.text_model not in {*PACKAGED_MODELS, *SPLIT_MODELS} and not Path(params.text_model).expanduser().exists():
        problems.append(("text_model", f"{params.text_model!r} is neither a packaged model"
                                       f" ({', '.join(sorted(SPLIT_MODELS))}, ...) nor an existing .gguf path"))
    if "stt" not in before:
        problems.append(("text_model", "scores the transcript, so the `turn` entry must come after an `stt` entry"
                                       " (vad → stt → turn → context)"))
    return problems


SPEC = ProcessorSpec("turn", TurnParams, build, "End of turn from smart-turn v3 and (optionally) the words heard.",
                     warm=warm, check=check)
