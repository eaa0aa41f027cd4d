"""Smart-turn v3 with a configurable end-of-turn threshold on a shared model session.

pipecat's ``LocalSmartTurnAnalyzerV3`` hard-codes 0.5 as the probability above which a
turn counts as complete, and loads its ONNX model per instance. This subclass is the one
place Cadence changes both.
"""

from __future__ import annotations

from typing import Any

from pipecat.audio.turn.smart_turn.base_smart_turn import BaseSmartTurn, SmartTurnParams
from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3


class SmartTurnAnalyzer(LocalSmartTurnAnalyzerV3):
    """LocalSmartTurnAnalyzerV3 with a ``threshold`` and an ONNX session handed in."""

    def __init__(self, *, session: Any, threshold: float = 0.5, params: SmartTurnParams | None = None):
        # Skip LocalSmartTurnAnalyzerV3.__init__: it would load another ONNX session.
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

    def configure(self, *, threshold: float, stop_secs: float) -> None:
        """Change the end-of-turn threshold and the longest wait, effective for the next turn."""
        self.threshold = threshold
        self._params.stop_secs = stop_secs
        self._stop_ms = stop_secs * 1000
