"""REST routes beside the realtime ones (memory and voices today; TTS and usage next)."""
