"""The Realtime client events that start and stop responses: ``response.create`` (in the
conversation, or out of band) and ``response.cancel``.

A part of ``RealtimeSession`` (a mixin): it uses the session's ``responses``, ``settings``,
``gate`` and ``out_of_band``.
"""

from __future__ import annotations

from typing import Any

from pipecat.frames.frames import LLMRunFrame, TTSSpeakFrame

from cadence.transports.realtime import out_of_band
from cadence.transports.realtime.protocol import ProtocolError
from cadence.transports.realtime.provider_data import check_tts, check_voice
from cadence.transports.realtime.responses import ResponseOptions


class ResponseEvents:
    """Response-making handlers of a ``RealtimeSession``."""

    config: Any
    responses: Any
    conversation: Any
    settings: Any
    gate: Any
    out_of_band: Any

    async def _on_response_create(self, event, data) -> None:
        options = data.get("response") or {}
        if out_of_band.wanted(options):  # beside the conversation: it may run while a reply is in progress
            ResponseOptions.requested(options, ["text"])  # the same checks (metadata) as any response
            self.out_of_band.start(options, model=self.settings.effective_model(self.config.model),
                                   instructions=self.config.instructions, max_tokens=self.config.max_output_tokens)
            return
        if self.responses.active:
            raise ProtocolError("conversation_already_has_active_response",
                                f"response {self.responses.current.id} is still in progress; cancel it first")
        chosen = ResponseOptions.requested(options, self.config.output_modalities)
        overrides = chosen.overrides
        if "system_instruction" in overrides or "max_tokens" in overrides:
            self.settings.check_room(self.config, instructions=overrides.get("system_instruction",
                                                                             self.config.instructions),
                                     max_tokens=overrides.get("max_tokens"), where="response")
        if "tools" in overrides or "tool_choice" in overrides:
            self.settings.check_tools(overrides.get("tools", self.config.tools),
                                      overrides.get("tool_choice", self.config.tool_choice), "response")
        if chosen.voice is not None or chosen.tts is not None:
            transcription = self.config.audio.input.transcription
            check_voice(chosen.voice, self.settings.defaults.catalog,
                        transcription.language if transcription is not None else None, param="response.audio.output.voice")
            check_tts(chosen.tts, "response")
            self.settings.check_delivery(chosen.tts, "response")
        self.responses.request(chosen)
        await self.settings.override(overrides, text_only=chosen.modalities == ["text"], config=self.config)
        if chosen.voice is not None or chosen.tts is not None:
            await self.settings.override_voice(self.config, chosen.voice, chosen.tts)
        self.gate.allow_one()
        await self._queue(LLMRunFrame())

    async def _on_response_cancel(self, event, data) -> None:
        wanted, current = data.get("response_id"), self.responses.current
        if self.out_of_band.cancel(wanted):
            return
        if wanted and (not current or current.id != wanted):
            raise ProtocolError("invalid_value", f"no response {wanted!r} is in progress", param="response_id")
        if not self.responses.active:  # OpenAI's answer too: a cancel never goes unanswered
            raise ProtocolError("response_cancel_not_active", "no response is in progress to cancel")
        await self._cancel_response()

    async def _greet(self, text: str) -> None:
        """The companion speaks first: a response of its own, remembered like any reply."""
        self.on_response_started()
        response = self.responses.current
        if not response.text_only:
            await self._queue(TTSSpeakFrame(text, append_to_context=True))
        else:  # nothing to speak with: the greeting is written
            self.on_llm_text(text)
            await self.conversation.append_message(response.message.id, "assistant", text)
            self._finish_response(response, "completed")
