"""Cadence: a self-hostable realtime voice stack for companion apps, built on pipecat."""

__version__ = "0.1.0"
