"""Voices: the catalog of named voices and the aliases clients bring (steering and
profiles come later)."""
