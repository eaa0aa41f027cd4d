"""Cadence's own frame types.

Cadence uses pipecat's frames (audio, text, control, system) wherever they fit and adds a
frame here only for what pipecat lacks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipecat.frames.frames import ControlFrame, SystemFrame


@dataclass
class PrerenderSpeechFrame(ControlFrame):
    """Asks the TTS to synthesize short phrases ahead of need (fillers, backchannels), so
    speaking one later costs no synthesis. A TTS that cannot cache passes it on unread."""

    texts: list[str] = field(default_factory=list)


@dataclass
class ReplyRequestedFrame(SystemFrame):
    """The LLM stage received a request for a reply (pushed ahead of everything it makes):
    the moment a reply's lateness counts from (fillers)."""


@dataclass
class TurnResumedFrame(SystemFrame):
    """The user went on speaking before any of the reply was heard: the turn that had ended
    (whose ``text`` leaves the context) continues, and its reply is dropped."""

    text: str = ""
