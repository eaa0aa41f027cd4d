"""What a companion remembers: the rolling summary of folded turns (per session today;
per-user facts and persistence come with the store)."""

from cadence.memory.summary import RollingSummary

__all__ = ["RollingSummary"]
