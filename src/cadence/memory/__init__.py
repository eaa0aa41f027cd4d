"""What a companion remembers: the rolling summary of folded turns, facts about the user
(extracted from their own words), character cards, and the per-session ``UserMemory`` that
loads and persists all of it through ``cadence.store``."""

from cadence.memory.summary import RollingSummary

__all__ = ["RollingSummary"]
