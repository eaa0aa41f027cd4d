"""REST routes beside the realtime ones (memory today; TTS, voices and usage next)."""
