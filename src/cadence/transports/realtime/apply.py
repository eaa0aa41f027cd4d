"""A Realtime session's settings → its running pipeline, through pipecat's own update frames.

VAD params go as ``VADParamsUpdateFrame``, LLM/STT/TTS settings as ``*UpdateSettingsFrame``;
smart-turn and barge-in are set on the objects the turn stage recorded in its roles.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from pipecat.audio.vad.vad_analyzer import VADParams
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.frames.frames import (
    Frame,
    LLMConfigureOutputFrame,
    LLMSetToolChoiceFrame,
    LLMSetToolsFrame,
    LLMUpdateSettingsFrame,
    STTUpdateSettingsFrame,
    TTSUpdateSettingsFrame,
    VADParamsUpdateFrame,
)
from pipecat.services.settings import LLMSettings, STTSettings
from pipecat.utils.types import NOT_GIVEN

from cadence.errors import CadenceError
from cadence.processors.reply_hold import ReplyHoldMixin
from cadence.stages import StageRoles
from cadence.tools.client import ClientTools, ToolError, chat_tool_choice
from cadence.transports.realtime.protocol import ProtocolError
from cadence.transports.realtime.provider_data import check_tts
from cadence.transports.realtime.listening import stage_settings
from cadence.transports.realtime.session_config import SessionConfig, SessionDefaults, TurnSettings

MIN_TURN_TOKENS = 192  # what the instructions must leave for the conversation itself


class SettingsApplier:
    """Pushes a session's settings into its pipeline (at start and after every change)."""

    def __init__(self, roles: StageRoles, queue_frame: Callable[[Frame], Awaitable[None]],
                 defaults: SessionDefaults, router: Any, yaml_card: Any = None, tools: ClientTools | None = None,
                 server_tools: Any = None):
        self.roles = roles
        self.tools = tools or ClientTools()
        self.server_tools = server_tools  # cadence.tools.server.ServerTools: always offered beside the client's
        self.mcp: Any = None  # cadence.tools.mcp.SessionMCP: this session's MCP connections, once connected
        self._tools_sent: str | None = None  # what the LLM was last told (tools and choice), to send changes only
        self._queue = queue_frame
        self.defaults = defaults
        self._router = router
        self._yaml_card = yaml_card
        # What was last sent to the VAD (the analyzer's own params lag until the frame arrives).
        vad = roles.vad_analyzer.params if roles.vad_analyzer is not None else None
        self._vad_sent = (vad.confidence, vad.stop_secs) if vad is not None else None

    def effective_model(self, requested: str) -> str:
        """The router model replies come from: ``requested`` when the router serves it (e.g.
        ``gpu/Qwen/Qwen2.5-7B-Instruct``), the model behind it when it is one of
        ``router.aliases``, otherwise the pipeline's own. The session echoes this name."""
        try:
            return self._router.canonical(requested)
        except CadenceError:  # a name nothing serves: the pipeline's own model answers
            return self.defaults.model

    def check_room(self, config: SessionConfig, *, instructions: str, max_tokens: Any, where: str) -> None:
        """ProtocolError when the reply's ``max_tokens``, the instructions or the character card
        leave the model's window no room for the conversation (``MIN_TURN_TOKENS``); the error
        names the field that takes the room and the limit."""
        model = self.effective_model(config.model)
        total = self._router.context_window(model)
        context_window = self.roles.context_window
        if total is None or context_window is None:
            return
        reply = max_tokens if isinstance(max_tokens, int) else self.defaults.max_tokens
        if reply > total // 2:
            raise ProtocolError("max_output_tokens_too_large", f"{model} has a {total}-token window; replies of"
                                f" up to {reply} tokens would leave too little for the conversation: give at most"
                                f" {total // 2}", param=f"{where}.max_output_tokens")
        character = self._character(config)
        room = context_window.room(model, instructions, reply, character=character)
        if room is not None and room < MIN_TURN_TOKENS:
            plain = context_window.room(model, instructions, reply, character=None)
            blame = "session.providerData.character" if character is not None and plain >= MIN_TURN_TOKENS \
                else f"{where}.instructions"
            raise ProtocolError("instructions_too_long", f"{blame.split('.', 1)[1]} take too much of {model}'s"
                                f" {total}-token window: with replies of up to {reply} tokens and the memory block,"
                                f" {room} tokens would be left for the conversation; it needs {MIN_TURN_TOKENS}."
                                f" Shorten it by {MIN_TURN_TOKENS - room} tokens or more", param=blame)

    def _character(self, config: SessionConfig) -> Any:
        from cadence.memory.cards import Character, parse_card

        card = config.providerData.get("character")
        if card:
            return Character(parse_card(card))
        return Character(self._yaml_card) if self._yaml_card else None

    def apply_character(self, config: SessionConfig) -> None:
        """The session's character card (``providerData.character``), else the YAML's."""
        if self.roles.context_window is not None:
            self.roles.context_window.character = self._character(config)

    async def apply(self, config: SessionConfig, turn: TurnSettings) -> None:
        """Turn detection, instructions, model, length, speed, transcription, modality."""
        roles = self.roles
        if roles.vad_analyzer is not None and self._vad_sent != (turn.vad_confidence, turn.vad_stop_secs):
            current = roles.vad_analyzer.params
            self._vad_sent = (turn.vad_confidence, turn.vad_stop_secs)
            await self._queue(VADParamsUpdateFrame(params=VADParams(
                confidence=turn.vad_confidence, start_secs=current.start_secs, stop_secs=turn.vad_stop_secs,
                min_volume=current.min_volume)))
        if roles.turn_analyzer is not None:
            roles.turn_analyzer.configure(threshold=turn.end_of_turn_threshold, stop_secs=turn.max_wait_secs)
        if roles.turn_start is not None:
            roles.turn_start.interruptions = turn.interrupt_response
        if hasattr(roles.turn_analyzer, "hold_replies"):  # text replies pass no TTS that could hold them
            roles.turn_analyzer.hold_replies = isinstance(roles.tts, ReplyHoldMixin) and not config.text_only
        if roles.llm is not None:
            config.model = self.effective_model(config.model)
            max_tokens = config.max_output_tokens
            await self._queue(LLMUpdateSettingsFrame(delta=LLMSettings(
                model=config.model, system_instruction=config.instructions,
                max_tokens=max_tokens if isinstance(max_tokens, int) else self.defaults.max_tokens)))
            await self._queue(LLMConfigureOutputFrame(skip_tts=config.text_only))
            await self._send_tools(config.tools, config.tool_choice, "session")
        transcription = config.audio.input.transcription
        if roles.stt is not None and transcription is not None:
            await self._queue(STTUpdateSettingsFrame(delta=_stt_settings(roles.stt, transcription)))
        if roles.filler is not None and self.defaults.filler is not None:
            roles.filler.configure(stage_settings("responsiveness", self.defaults.filler,
                                                  config.providerData.get("responsiveness")))
        if roles.backchannel is not None and self.defaults.backchannel is not None:
            params = stage_settings("backchannel", self.defaults.backchannel, config.providerData.get("backchannel"))
            # Only a spoken session whose turns the server detects has a user turn to listen to.
            listening = params.enabled and turn.mode is not None and not config.text_only
            roles.backchannel.configure(params.model_copy(update={"enabled": listening}))
        if roles.tts is not None and hasattr(roles.tts, "speed"):
            await self._queue(TTSUpdateSettingsFrame(delta=self._voice_settings(config)))

    def _voice_settings(self, config: SessionConfig, voice_name: str | None = None,
                        tts: dict[str, Any] | None = None) -> Any:
        """The TTS settings of the session's voice (or ``voice_name``, one response's): its
        engine voice, prosody and delivery (a catalog entry's speed multiplies the session's
        ``audio.output.speed``; ``providerData.tts`` — the session's, then ``tts``, one
        response's — overrides the voice's delivery, which overrides the tts stage's)."""
        name = voice_name or config.voice
        voice = self.defaults.catalog.resolve(name) if name else None
        entry = voice.entry if voice is not None else None
        settings: dict[str, Any] = {"speed": config.audio.output.speed * (entry.speed if entry is not None else 1.0)}
        if entry is not None and entry.engine == "openai":
            settings.update(voice=f"openai:{voice.name}", hosted=entry)
        elif entry is not None:
            settings.update(voice=entry.voice, noise_scale=entry.noise_scale, noise_w_scale=entry.noise_w_scale,
                            volume=entry.volume, speaker_id=entry.speaker, hosted=None)
        session = check_tts(config.providerData.get("tts"))
        response = check_tts(tts, "response")
        settings.update(
            delivery_mode=response.deliveryMode or session.deliveryMode or (entry and entry.delivery_mode)
            or self.defaults.delivery_mode,
            steering=_first_set("steering", response, session,  # an explicit null turns steering off
                                default=(entry and entry.steering) or self.defaults.steering),
            sentiment=_first_set("sentiment", response, session, default=self.defaults.sentiment))
        fields = type(self.roles.tts).Settings.__dataclass_fields__
        return type(self.roles.tts).Settings(**{k: v for k, v in settings.items() if k in fields})

    async def override_voice(self, config: SessionConfig, voice_name: str | None, tts: dict[str, Any] | None) -> None:
        """One response's voice and ``providerData.tts`` (``apply`` restores the session's)."""
        if self.roles.tts is not None and hasattr(self.roles.tts, "speed"):
            await self._queue(TTSUpdateSettingsFrame(delta=self._voice_settings(config, voice_name, tts)))

    def check_delivery(self, tts: dict[str, Any] | None, where: str = "session") -> None:
        """ProtocolError when ``providerData.tts`` asks a pipeline for delivery its TTS cannot
        perform (no tts stage, or a plugin engine without Cadence's delivery)."""
        if tts and not hasattr(self.roles.tts, "delivery"):
            engine = "no tts stage" if self.roles.tts is None else f"its TTS ({type(self.roles.tts).__name__})"
            raise ProtocolError("unsupported", f"providerData.tts needs the tts stage's steered voice; this"
                                f" pipeline has {engine}", param=f"{where}.providerData.tts")

    def check_memory(self, config: SessionConfig) -> None:
        """ProtocolError when ``providerData.memory`` asks for memory a pipeline without a
        context stage cannot keep."""
        if config.providerData.get("memory") and self.roles.context_window is None:
            raise ProtocolError("unsupported", "providerData.memory needs a `context` stage in the pipeline",
                                param="session.providerData.memory")

    async def apply_memory(self, config: SessionConfig) -> None:
        """``providerData.memory``: its knobs, and the user it names (whose memory is loaded)."""
        window = self.roles.context_window
        data = config.providerData.get("memory") or {}
        if window is None:
            return
        knobs = ("persist", "auto_summarize", "extract_facts", "relevant_facts")
        window.memory.configure(**{k: data[k] for k in knobs if data.get(k) is not None})
        if data.get("user") and data["user"] != window.memory.user:
            await window.attach(data["user"])

    def wire(self, config: SessionConfig) -> dict[str, Any]:
        """The session as sent to the client, with the memory's state in ``providerData.memory.state``."""
        data = config.wire()
        if self.roles.context_window is not None:
            memory = data["providerData"].get("memory")
            data["providerData"]["memory"] = {**(memory if isinstance(memory, dict) else {}),
                                              "state": self.roles.context_window.memory.state()}
        return data

    async def connect_tools(self) -> list[dict[str, Any]]:
        """Open this session's MCP connections (the YAML's ``mcp:`` tools); an ``error`` event
        for each server that could not be reached (the session goes on without its tools)."""
        if self.server_tools is None or not self.server_tools.mcp:
            return []
        from cadence.tools.mcp import SessionMCP

        self.mcp = SessionMCP(self.server_tools.mcp)
        failures = await self.mcp.connect()
        return [{"type": "error", "error": {"type": "server_error", "code": "tool_unavailable", "param": f"tools.{name}",
                                            "message": f"the MCP server of tools.{name} is unavailable: {why}"}}
                for name, why in failures]

    def server_tool_names(self) -> set[str]:
        """The names of the tools this server runs itself (the YAML's, MCP servers' included)."""
        names = set(self.server_tools.names) if self.server_tools is not None else set()
        return names | {s.name for s in self.mcp.schemas} if self.mcp is not None else names

    async def close_tools(self) -> None:
        """Close this session's MCP connections."""
        if self.mcp is not None:
            await self.mcp.close()

    def check_tools(self, tools: Any, tool_choice: Any, where: str) -> None:
        """ProtocolError naming the field for a tool or tool_choice the model cannot be given."""
        self._tool_frames(tools, tool_choice, where)

    def _tool_frames(self, tools: Any, tool_choice: Any, where: str) -> tuple[str, list[Frame]]:
        if not isinstance(tools, list):
            raise ProtocolError("invalid_value", f"{where}.tools must be a list of function tools", param=f"{where}.tools")
        server = self.server_tools.schemas() if self.server_tools is not None else []
        server += self.mcp.schemas if self.mcp is not None else []
        try:
            schemas = self.tools.schemas(tools, f"{where}.tools", reserved={s.name for s in server})
            schemas = [*server, *schemas]
            choice = chat_tool_choice(tool_choice, [s.name for s in schemas], f"{where}.tool_choice")
        except ToolError as exc:
            raise ProtocolError("invalid_value", str(exc), param=exc.param) from exc
        if schemas and self.roles.llm is None:
            raise ProtocolError("unsupported", "tools need an llm stage in the pipeline", param=f"{where}.tools")
        signature = json.dumps([[s.to_default_dict() for s in schemas], choice], sort_keys=True, default=str)
        frames: list[Frame] = [LLMSetToolsFrame(tools=ToolsSchema(standard_tools=schemas) if schemas else NOT_GIVEN),
                               # no tools, no choice: a stale "required" beside no tools is a 400 upstream
                               LLMSetToolChoiceFrame(tool_choice=choice if schemas else NOT_GIVEN)]
        return signature, frames

    async def _send_tools(self, tools: Any, tool_choice: Any, where: str) -> None:
        signature, frames = self._tool_frames(tools, tool_choice, where)
        if signature != self._tools_sent:
            self._tools_sent = signature
            for frame in frames:
                await self._queue(frame)

    async def override(self, overrides: dict[str, Any], text_only: bool, config: SessionConfig | None = None) -> None:
        """LLM settings, tools and modality for one response only (``apply`` restores them)."""
        overrides = dict(overrides)
        if config is not None and ("tools" in overrides or "tool_choice" in overrides):
            await self._send_tools(overrides.pop("tools", config.tools), overrides.pop("tool_choice", config.tool_choice),
                                   "response")
        if overrides:
            await self._queue(LLMUpdateSettingsFrame(delta=LLMSettings(**overrides)))
        await self._queue(LLMConfigureOutputFrame(skip_tts=text_only))


def _first_set(name: str, *layers: Any, default: Any = None) -> Any:
    """The value of ``name`` in the first layer that set it (an explicit null included)."""
    for layer in layers:
        if name in layer.model_fields_set:
            return getattr(layer, name)
    return default


def _stt_settings(stt: Any, transcription: Any) -> STTSettings:
    from pipecat.transcriptions.language import Language

    settings_cls = getattr(type(stt), "Settings", STTSettings)
    language = Language(transcription.language) if transcription.language else None
    try:
        return settings_cls(language=language, initial_prompt=transcription.prompt)
    except TypeError:  # an STT service without a prompt setting (Whisper's is initial_prompt)
        return settings_cls(language=language)
