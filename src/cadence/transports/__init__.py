"""The ends of a pipeline: where audio and text come from and go to."""
