"""The Realtime session object as Cadence runs it: typed, with its defaults from the YAML.

``SessionDefaults`` reads what the YAML's stages say (VAD confidence and stop, smart-turn
threshold and longest wait, barge-in, voice, model, reply length, ...), and
``SessionConfig.initial`` turns it into the session a connection starts with, so a client
that never sends ``session.update`` runs exactly the YAML's settings, and
``session.created`` shows them. ``merge`` applies a ``session.update`` with OpenAI's
semantics (sub-objects replace, ``providerData`` merges) and validates the result;
``turn_settings`` resolves the turn-detection fields (OpenAI's and Inworld's names) into
the numbers the pipeline uses.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cadence.pipelines import ValidatedConfig
from cadence.processors.backchannel import BackchannelParams
from cadence.processors.filler import FillerParams
from cadence.stages import StageRoles
from cadence.voice.catalog import VoiceCatalog, pipeline_catalog
from cadence.transports.realtime.protocol import ProtocolError, error_param, new_id
from cadence.transports.realtime.listening import check_knobs, listens_in_vain, unsupported
from cadence.transports.realtime.provider_data import (
    card_greeting, check_card, check_flags, check_memory, check_tts, check_voice)

# providerData features Cadence accepts but does not act on yet; reported, never ignored.
NOT_YET: set[str] = set()
# semantic_vad eagerness → (smart-turn threshold, longest wait in seconds); "auto" is the YAML's.
EAGERNESS = {"low": (0.7, 8.0), "medium": (0.5, 4.0), "high": (0.3, 2.0)}
# Inworld's turn fields, honoured inside turn_detection or providerData.stt. The last is
# Cadence's own: the longest silence before the turn ends whatever smart-turn says.
STT_FIELDS = ("endOfTurnConfidenceThreshold", "minEndOfTurnSilenceWhenConfident", "vadThreshold",
              "inactivityTimeoutSeconds", "maxEndOfTurnSilenceMs")


@dataclass(frozen=True)
class SessionDefaults:
    """What a new session starts with, read from the YAML config."""

    model: str
    instructions: str
    greeting: str | None
    voices: tuple[str, ...]
    speaks: bool  # the pipeline has a TTS (a plugin's TTS may have no named voices)
    speed: float
    max_tokens: int
    stt_model: str | None
    language: str
    transcription_prompt: str | None
    turn_detection: bool  # a vad stage exists, so the server can detect turns
    vad_confidence: float
    vad_stop_secs: float
    turn_threshold: float
    max_wait_secs: float
    interruptions: bool
    filler: FillerParams | None = None  # the filler stage's YAML params (None: no filler stage)
    backchannel: BackchannelParams | None = None  # the backchannel stage's YAML params (None: none)
    pause_verdicts: bool = False  # the turn stage judges each pause (text_model): require_pause works
    catalog: VoiceCatalog = field(default_factory=lambda: VoiceCatalog(None))  # voices and stock-name aliases
    delivery_mode: str = "BALANCED"  # the tts stage's delivery (a voice's own or providerData.tts may override)
    steering: str | None = None
    sentiment: bool = True

    @classmethod
    def from_config(cls, config: ValidatedConfig, roles: StageRoles | None = None) -> SessionDefaults:
        """The defaults of ``config``'s stages; stages it lacks leave pipecat's own values.
        ``roles`` (a built pipeline's) tell whether a plugin stage speaks."""
        vad, turn, stt = config.params_of("vad"), config.params_of("turn"), config.params_of("stt")
        llm, tts = config.params_of("llm"), config.params_of("tts")
        session = config.config.session
        return cls(
            model=getattr(llm, "model", "none"),
            instructions=session.instructions,
            greeting=session.greeting or (card_greeting(config.character) if config.character else None),
            voices=(tts.voice,) if tts is not None else (),
            speaks=roles.tts is not None if roles is not None else tts is not None,
            speed=getattr(tts, "speed", 1.0),
            max_tokens=getattr(llm, "max_tokens", 256),
            stt_model=getattr(stt, "model", None),
            language=getattr(stt, "language", "en"),
            transcription_prompt=getattr(stt, "prompt", None),
            turn_detection=vad is not None,
            vad_confidence=getattr(vad, "confidence", 0.7),
            vad_stop_secs=getattr(vad, "stop_secs", 0.2),
            turn_threshold=getattr(turn, "threshold", 0.5),
            max_wait_secs=getattr(turn, "stop_secs", 3.0),
            interruptions=getattr(turn, "interruptions", True),
            filler=config.params_of("filler"),
            backchannel=config.params_of("backchannel"),
            pause_verdicts=getattr(turn, "text_model", None) is not None,
            catalog=pipeline_catalog(tts, config.config.voices),
            delivery_mode=getattr(tts, "delivery_mode", "BALANCED"),
            steering=getattr(tts, "steering", None),
            sentiment=getattr(tts, "sentiment", True),
        )


@dataclass(frozen=True)
class TurnSettings:
    """Turn detection as the pipeline sees it; ``None`` mode means the client commits."""

    mode: str | None  # "server_vad" | "semantic_vad" | None
    vad_confidence: float
    vad_stop_secs: float
    end_of_turn_threshold: float
    max_wait_secs: float
    create_response: bool
    interrupt_response: bool
    idle_timeout_ms: int | None


class _Open(BaseModel):
    """Keys Cadence does not model are kept and echoed as the client sent them."""

    model_config = ConfigDict(extra="allow")


class TurnDetection(_Open):
    """``audio.input.turn_detection``: OpenAI's server_vad / semantic_vad plus Inworld's names."""

    type: Literal["server_vad", "semantic_vad"] = "server_vad"
    threshold: float | None = Field(None, ge=0, le=1)
    prefix_padding_ms: int | None = Field(None, ge=0)
    silence_duration_ms: int | None = Field(None, ge=0)
    create_response: bool = True
    interrupt_response: bool | None = None
    idle_timeout_ms: int | None = Field(None, ge=0)
    eagerness: Literal["low", "medium", "high", "auto"] | None = None
    endOfTurnConfidenceThreshold: float | None = Field(None, ge=0, le=1)
    minEndOfTurnSilenceWhenConfident: float | None = Field(None, ge=0)
    maxEndOfTurnSilenceMs: float | None = Field(None, gt=0)
    vadThreshold: float | None = Field(None, ge=0, le=1)
    inactivityTimeoutSeconds: float | None = Field(None, ge=0)


class AudioFormat(_Open):
    type: Literal["audio/pcm", "audio/pcmu", "audio/pcma"] = "audio/pcm"
    rate: int | None = None


class Transcription(_Open):
    model: str | None = None
    language: str | None = None
    prompt: str | None = None


class AudioInput(_Open):
    format: AudioFormat = Field(default_factory=lambda: AudioFormat(type="audio/pcm", rate=24000))
    transcription: Transcription | None = None
    noise_reduction: dict[str, Any] | None = None
    turn_detection: TurnDetection | None = None


class AudioOutput(_Open):
    format: AudioFormat = Field(default_factory=lambda: AudioFormat(type="audio/pcm", rate=24000))
    voice: str | dict[str, Any] | None = None
    speed: float = Field(1.0, ge=0.25, le=1.5)


class Audio(_Open):
    input: AudioInput = Field(default_factory=AudioInput)
    output: AudioOutput = Field(default_factory=AudioOutput)


class SessionConfig(_Open):
    """The effective session, echoed whole in ``session.created`` / ``session.updated``."""

    type: Literal["realtime"] = "realtime"
    object: Literal["realtime.session"] = "realtime.session"
    id: str
    model: str
    instructions: str = ""
    output_modalities: list[Literal["audio", "text"]] = Field(default_factory=lambda: ["audio"])
    tools: list[Any] = Field(default_factory=list)
    tool_choice: Any = "auto"
    max_output_tokens: int | Literal["inf"] = "inf"
    audio: Audio = Field(default_factory=Audio)
    providerData: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def initial(cls, defaults: SessionDefaults, *, model: str | None = None) -> SessionConfig:
        """The session a new connection starts with: the YAML's settings, shown truthfully."""
        config = cls(
            id=new_id("sess"), model=model or defaults.model, instructions=defaults.instructions,
            max_output_tokens=defaults.max_tokens,
            # Without a tts stage there is nothing to speak with: replies are text.
            output_modalities=["audio"] if defaults.speaks else ["text"],
            audio=Audio(
                input=AudioInput(transcription=Transcription(model=defaults.stt_model, language=defaults.language,
                                                             prompt=defaults.transcription_prompt),
                                 turn_detection=TurnDetection() if defaults.turn_detection else None),
                output=AudioOutput(voice=defaults.voices[0] if defaults.voices else None, speed=defaults.speed),
            ),
        )
        config._resolve(defaults)
        return config

    def wire(self) -> dict[str, Any]:
        """The session object as it goes on the wire."""
        data = self.model_dump(mode="json")
        detection = self.audio.input.turn_detection
        if detection is not None:  # the fields of the other VAD type stay out of the echo
            data["audio"]["input"]["turn_detection"] = detection.model_dump(mode="json", exclude_none=True)
            data["audio"]["input"]["turn_detection"].setdefault("idle_timeout_ms", None)
        return data

    @property
    def voice(self) -> str | None:  # noqa: D102
        voice = self.audio.output.voice
        return voice.get("id") if isinstance(voice, dict) else voice

    @property
    def text_only(self) -> bool:
        return self.output_modalities == ["text"]

    def merge(self, update: dict[str, Any], defaults: SessionDefaults) -> SessionConfig:
        """This session with ``update`` applied; ProtocolError for values Cadence cannot honour."""
        merged = self.wire()
        update = copy.deepcopy(update)
        provider_data = update.pop("providerData", None)
        audio = update.pop("audio", None) or {}
        for key, value in update.items():
            if key not in ("id", "object", "type"):
                merged[key] = value
        for side in ("input", "output"):
            for key, value in (audio.get(side) or {}).items():
                merged["audio"][side][key] = value  # whole sub-objects replace, as in OpenAI's API
        if provider_data is not None:
            if not isinstance(provider_data, dict):
                raise ProtocolError("invalid_value", "providerData must be an object", param="session.providerData")
            card = provider_data.pop("character", _ABSENT)
            _deep_merge(merged["providerData"], provider_data)
            check_memory(merged["providerData"])
            check_flags(merged["providerData"])
            check_tts(merged["providerData"].get("tts"))
            if card is not _ABSENT:  # a card replaces the last one whole (null removes it)
                check_card(card)
                merged["providerData"]["character"] = card
        merged["providerData"]["unsupported"] = sorted(
            [k for k in merged["providerData"] if k in NOT_YET] + unsupported(merged["providerData"]))
        try:
            result = SessionConfig.model_validate(merged)
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            param = error_param(error["loc"], ("session",))
            raise ProtocolError("invalid_value", f"{param}: {error['msg']}", param=param) from exc
        result._check(defaults)
        result._resolve(defaults)
        if listens_in_vain(result.providerData, defaults, result.text_only or result.audio.input.turn_detection is None):
            result.providerData["unsupported"] = sorted([*result.providerData["unsupported"], "backchannel.enabled"])
        return result

    def _resolve(self, defaults: SessionDefaults) -> None:
        """Fill what the client left out with the YAML's values and make the echo show the
        turn-detection numbers that run (providerData.stt included)."""
        voice = defaults.catalog.resolve(self.voice) if self.voice else None
        if voice is not None:  # the name asked for stays; this says what speaks it
            self.providerData["voice"] = voice.wire()
            if "model" in (self.audio.output.model_extra or {}):  # e.g. "inworld-tts-2": what runs instead
                self.audio.output.model = voice.engine
        transcription = self.audio.input.transcription or Transcription()
        transcription.model = defaults.stt_model  # the model that runs, whatever name was asked for
        transcription.language = transcription.language or defaults.language
        if "prompt" not in transcription.model_fields_set:
            transcription.prompt = defaults.transcription_prompt
        self.audio.input.transcription = transcription
        detection = self.audio.input.turn_detection
        if detection is None:
            return
        if detection.type == "semantic_vad" and detection.eagerness not in (None, "auto"):
            # eagerness sets both; echoed values from an earlier object must not override it
            detection.endOfTurnConfidenceThreshold = detection.maxEndOfTurnSilenceMs = None
        turn = self.turn_settings(defaults, with_provider_data=False)  # providerData.stt shows its own
        if detection.interrupt_response is None:
            detection.interrupt_response = turn.interrupt_response
        if detection.type == "semantic_vad":
            detection.eagerness = detection.eagerness or "auto"
        else:
            detection.threshold = turn.vad_confidence
            detection.silence_duration_ms = round(turn.vad_stop_secs * 1000)
            detection.endOfTurnConfidenceThreshold = turn.end_of_turn_threshold
            detection.maxEndOfTurnSilenceMs = round(turn.max_wait_secs * 1000)
            if detection.prefix_padding_ms is None:
                detection.prefix_padding_ms = 300

    def _check(self, defaults: SessionDefaults) -> None:
        check_voice(self.voice, defaults.catalog)
        if len(self.output_modalities) != 1:
            raise ProtocolError("invalid_value", "output_modalities must be ['audio'] or ['text']",
                                param="session.output_modalities")
        if self.output_modalities == ["audio"] and not defaults.speaks:
            raise ProtocolError("invalid_value", "this pipeline has no tts stage: output_modalities must be ['text']",
                                param="session.output_modalities")
        check_knobs(self.providerData, defaults)  # raises naming the field
        stt = self.providerData.get("stt")
        if stt is not None and not isinstance(stt, dict):
            raise ProtocolError("invalid_value", "providerData.stt must be an object", param="session.providerData.stt")
        try:  # Inworld's turn fields carry the same types and ranges wherever they are given
            TurnDetection.model_validate({k: v for k, v in (stt or {}).items() if k in STT_FIELDS})
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            param = error_param(error["loc"], ("session", "providerData", "stt"))
            raise ProtocolError("invalid_value", f"{param}: {error['msg']}", param=param) from exc
        language = (self.audio.input.transcription or Transcription()).language
        if language:
            from pipecat.transcriptions.language import Language

            try:
                Language(language)
            except ValueError:
                raise ProtocolError("invalid_value", f"unknown language {language!r}; give a code such as 'en'",
                                    param="session.audio.input.transcription.language") from None
        model = defaults.stt_model or ""
        if language and model.endswith(".en") and language != "en":
            raise ProtocolError("invalid_value", f"the transcription model {model} is English-only;"
                                " language must be 'en'", param="session.audio.input.transcription.language")
        check_voice(self.voice, defaults.catalog, language)  # a voice that cannot speak what is heard

    def turn_settings(self, defaults: SessionDefaults, *, with_provider_data: bool = True) -> TurnSettings:
        """The pipeline's turn-detection numbers for this session (``providerData.stt`` wins)."""
        detection = self.audio.input.turn_detection
        if detection is None:
            return TurnSettings(None, defaults.vad_confidence, defaults.vad_stop_secs, defaults.turn_threshold,
                                defaults.max_wait_secs, False, False, None)
        fields = detection.model_dump(exclude_none=True)
        if with_provider_data:
            fields.update({k: v for k, v in (self.providerData.get("stt") or {}).items() if k in STT_FIELDS
                           and v is not None})
        if detection.type == "semantic_vad" and detection.eagerness not in (None, "auto"):
            threshold, max_wait = EAGERNESS[detection.eagerness]
            fields.setdefault("endOfTurnConfidenceThreshold", threshold)
            fields.setdefault("maxEndOfTurnSilenceMs", max_wait * 1000)
        silence_ms = fields.get("minEndOfTurnSilenceWhenConfident", fields.get("silence_duration_ms"))
        idle_ms = fields.get("idle_timeout_ms")
        if fields.get("inactivityTimeoutSeconds") is not None:
            idle_ms = float(fields["inactivityTimeoutSeconds"]) * 1000
        return TurnSettings(
            mode=detection.type,
            vad_confidence=float(fields.get("vadThreshold", fields.get("threshold", defaults.vad_confidence))),
            vad_stop_secs=float(silence_ms) / 1000 if silence_ms is not None else defaults.vad_stop_secs,
            end_of_turn_threshold=float(fields.get("endOfTurnConfidenceThreshold", defaults.turn_threshold)),
            max_wait_secs=float(fields.get("maxEndOfTurnSilenceMs", defaults.max_wait_secs * 1000)) / 1000,
            create_response=detection.create_response,
            interrupt_response=bool(fields.get("interrupt_response", defaults.interruptions)),
            idle_timeout_ms=int(idle_ms) if idle_ms else None,
        )


_ABSENT = object()


def _deep_merge(into: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = value
