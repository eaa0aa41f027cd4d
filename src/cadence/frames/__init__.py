"""Cadence's own frame types.

Cadence uses pipecat's frames (audio, text, control, system) wherever they fit and adds a
frame here only for what pipecat lacks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipecat.frames.frames import ControlFrame, OutputAudioRawFrame, SystemFrame


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


@dataclass
class TurnPauseFrame(SystemFrame):
    """The turn stage's verdict on a pause in the user's speech (at each VAD stop): whether
    the words and sound so far read as unfinished, i.e. the turn is held open. No user text."""

    unfinished: bool = False
    score: float = 0.0
    wait_secs: float = 0.0


@dataclass
class BackchannelAudioFrame(OutputAudioRawFrame):
    """A listener's short acknowledgement ("mm-hm") played while the user talks. Not a reply:
    the output transport plays it (it is no TTS audio, so the bot is not "speaking" and no
    barge-in follows), the Realtime WebSocket sends it as a ``cadence.backchannel`` event,
    and it never reaches the context or a transcript."""

    text: str = ""


@dataclass
class ReplyHoldFrame(SystemFrame):
    """The turn stage ended a turn: its reply is made at once but not heard before ``until``
    (``time.monotonic()``; later than now after a statement, which may still go on) nor while
    speech is beginning, so speech resuming still continues the turn (``TurnResumption``)."""

    until: float = 0.0


@dataclass
class DeliveryTagFrame(ControlFrame):
    """A steering tag taken out of the reply's text (``cadence.voice.tags.Tag``), in order
    between the words around it: a TTS that performs delivery applies it to the words
    after it; any other passes it on unread."""

    tag: object = None
