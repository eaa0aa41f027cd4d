"""Cadence's own frame types.

Cadence uses pipecat's frames (audio, text, control, system) wherever they fit and adds a
frame here only for what pipecat lacks, e.g. delivery hints for steered TTS, backchannel
and filler markers, or summary updates. The foundation needs none of its own yet.
"""
