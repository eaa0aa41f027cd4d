"""Frames seen in a session's pipeline → the session's protocol callbacks.

Which processor a frame comes from is decided by identity against the roles the stages
recorded at build time (and the session's own output transport), never by class name.
"""

from __future__ import annotations

from typing import Any, Protocol

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    ErrorFrame,
    FunctionCallCancelFrame,
    FunctionCallResultFrame,
    FunctionCallsStartedFrame,
    InterruptionFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    MetricsFrame,
    OutputAudioRawFrame,
    TTSTextFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.metrics.metrics import LLMUsageMetricsData
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.processors.frame_processor import FrameDirection

from cadence.frames import BackchannelAudioFrame, TurnResumedFrame
from cadence.stages import StageRoles


class PipelineHooks(Protocol):
    """What a session wants to hear about its pipeline."""

    def on_speech_started(self, start_secs: float) -> None: ...
    def on_speech_stopped(self, stop_secs: float) -> None: ...
    def on_turn_ended(self) -> None: ...
    def on_response_started(self) -> None: ...
    def on_llm_text(self, text: str) -> None: ...
    def on_spoken_text(self, text: str) -> None: ...
    def on_audio_played(self, duration_ms: float) -> None: ...
    def on_output_started(self) -> None: ...
    def on_output_stopped(self) -> None: ...
    def on_usage(self, usage: Any) -> None: ...
    def on_service_error(self, role: str, message: str) -> None: ...
    def on_interruption(self) -> None: ...
    def on_turn_resumed(self) -> None: ...
    def on_function_calls(self, calls: list[Any]) -> None: ...
    def on_llm_words(self, text: str) -> None: ...
    def on_function_result(self, call_id: str, name: str, result: Any) -> None: ...


class SessionEvents(BaseObserver):
    """Turns frames pushed downstream by known processors into ``PipelineHooks`` calls."""

    def __init__(self, hooks: PipelineHooks, roles: StageRoles, transport_out: Any):
        super().__init__()
        self._hooks = hooks
        self._roles = roles
        self._out = transport_out
        self._interruption: int | None = None  # the last interruption reported

    def _interrupted(self, frame: InterruptionFrame) -> None:
        # Reported where it starts (the turn stage, or the input transport on a cancel),
        # not where it ends: the LLM, cancelled, pushes its end-of-response frame before
        # it forwards the interruption, so the assistant aggregator can see a reply end
        # normally that the user in fact cut short.
        if frame.id != self._interruption:
            self._interruption = frame.id
            self._hooks.on_interruption()

    async def on_push_frame(self, data: FramePushed) -> None:
        frame, source, roles, hooks = data.frame, data.source, self._roles, self._hooks
        if data.direction != FrameDirection.DOWNSTREAM:
            # A service reports a failure upstream (pipecat's push_error), once, from itself.
            if isinstance(frame, ErrorFrame) and source is frame.processor:
                for role in ("llm", "tts", "stt", "backchannel"):
                    if source is getattr(roles, role):
                        hooks.on_service_error(role, frame.error)
            return
        if isinstance(frame, TurnResumedFrame):
            if source is roles.resumption:  # where it starts, not at every processor it passes
                hooks.on_turn_resumed()
        elif isinstance(frame, InterruptionFrame):
            self._interrupted(frame)
        elif source is roles.vad:
            if isinstance(frame, VADUserStartedSpeakingFrame):
                hooks.on_speech_started(frame.start_secs)
            elif isinstance(frame, VADUserStoppedSpeakingFrame):
                hooks.on_speech_stopped(frame.stop_secs)
        elif isinstance(frame, LLMTextFrame) and source is (roles.steering or roles.llm):
            if source is roles.llm:  # seen in order with the LLM's own function-call frames
                hooks.on_llm_words(frame.text)
            hooks.on_llm_text(frame.text)  # after the steering stage: the words without their tags
        elif source is roles.llm:
            if isinstance(frame, LLMTextFrame):
                hooks.on_llm_words(frame.text)
            elif isinstance(frame, LLMFullResponseStartFrame):
                hooks.on_response_started()
            elif isinstance(frame, FunctionCallsStartedFrame):
                hooks.on_function_calls(list(frame.function_calls))
            elif isinstance(frame, FunctionCallResultFrame) and (frame.properties is None or frame.properties.is_final):
                hooks.on_function_result(frame.tool_call_id, frame.function_name, frame.result)
            elif isinstance(frame, FunctionCallCancelFrame):  # a server tool cut short by a barge-in
                hooks.on_function_result(frame.tool_call_id, frame.function_name, "CANCELLED")
            elif isinstance(frame, MetricsFrame):
                for item in frame.data:
                    if isinstance(item, LLMUsageMetricsData):
                        hooks.on_usage(item.value)
        elif source is roles.tts:
            if isinstance(frame, TTSTextFrame):
                hooks.on_spoken_text(frame.text)
        elif source is self._out:
            if isinstance(frame, OutputAudioRawFrame) and not isinstance(frame, BackchannelAudioFrame):
                hooks.on_audio_played(len(frame.audio) / 2 / frame.sample_rate * 1000)
            elif isinstance(frame, BotStartedSpeakingFrame):
                hooks.on_output_started()
            elif isinstance(frame, BotStoppedSpeakingFrame):
                hooks.on_output_stopped()
        if isinstance(frame, UserStoppedSpeakingFrame) and source is (roles.turn or roles.user_aggregator):
            hooks.on_turn_ended()
