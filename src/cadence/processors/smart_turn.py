"""Smart-turn v3 with a configurable end-of-turn threshold on a shared model session, and a
VAD turn start whose barge-in can be switched per session.

pipecat's ``LocalSmartTurnAnalyzerV3`` hard-codes 0.5 as the probability above which a
turn counts as complete, and loads its ONNX model per instance. This subclass is the one
place Cadence changes both.
"""

from __future__ import annotations

from typing import Any

from pipecat.audio.turn.smart_turn.base_smart_turn import BaseSmartTurn, SmartTurnParams
from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3
from pipecat.turns.user_start import VADUserTurnStartStrategy


class SmartTurnAnalyzer(LocalSmartTurnAnalyzerV3):
    """LocalSmartTurnAnalyzerV3 with a ``threshold`` and an ONNX session handed in."""

    def __init__(self, *, session: Any, threshold: float = 0.5, params: SmartTurnParams | None = None):
        # Skip LocalSmartTurnAnalyzerV3.__init__: it would load another ONNX session.
        # (Listed in tests/unit/test_pipecat_canary.py.)
        BaseSmartTurn.__init__(self, params=params)
        self._log_data = False
        self._session = session
        self.threshold = threshold
        self.last_probability: float | None = None

    def _predict_endpoint(self, audio_array: Any) -> dict[str, Any]:
        result = super()._predict_endpoint(audio_array)
        self.last_probability = result["probability"]
        result["prediction"] = 1 if result["probability"] > self.threshold else 0
        return result

    @property
    def stop_secs(self) -> float:
        """The longest silence after which the turn ends whatever the model says."""
        return self.params.stop_secs

    def configure(self, *, threshold: float, stop_secs: float) -> None:
        """Change the end-of-turn threshold and the longest wait, effective for the next turn."""
        self.threshold = threshold
        # pipecat reads stop_secs once at construction into _stop_ms and has no setter.
        self.params.stop_secs = stop_secs
        self._stop_ms = stop_secs * 1000


class SwitchableVADTurnStart(VADUserTurnStartStrategy):
    """VADUserTurnStartStrategy whose barge-in (``interruptions``) can change mid-session.

    pipecat takes ``enable_interruptions`` only at construction; its public per-call
    override of ``trigger_user_turn_started`` is the route used here, so nothing private
    is written (Realtime's ``interrupt_response`` switches it).
    """

    def __init__(self, *, interruptions: bool = True, **kwargs: Any):
        super().__init__(enable_interruptions=interruptions, **kwargs)
        self.interruptions = interruptions

    async def trigger_user_turn_started(self, *, enable_interruptions: bool | None = None,
                                        enable_user_speaking_frames: bool | None = None):
        await super().trigger_user_turn_started(
            enable_interruptions=self.interruptions if enable_interruptions is None else enable_interruptions,
            enable_user_speaking_frames=enable_user_speaking_frames,
        )
