"""Typed specs of a Cadence config file's top-level sections.

Each section is a pydantic model with ``extra="forbid"`` so that a misspelled key is an
error, never silently ignored. Pipeline entries are validated one by one against the
params model of their ``type`` (see ``registry.py``); here they are plain mappings.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, SecretStr, field_validator, model_validator

from cadence.stages import Spec
from cadence.tools.spec import ToolSection
from cadence.voice.catalog import VoiceEntry


_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_ORIGIN = re.compile(rf"[a-z][a-z0-9+.-]*://(?:\[[0-9a-f:.]+\]|{_LABEL}(?:\.{_LABEL})*)(?::(?P<port>[0-9]{{1,5}}))?")


def _origin(value: str) -> str:
    """A browser origin as its Origin header says it (scheme://host[:port], lower case), or '*'."""
    origin = value.strip().lower()
    match = _ORIGIN.fullmatch(origin)
    if origin == "*" or (match and int(match["port"] or 0) <= 65535):
        return origin
    hint = " (drop the trailing '/')" if origin.endswith("/") and _ORIGIN.fullmatch(origin[:-1]) else ""
    raise ValueError(f"not an origin{hint}: expected scheme://host[:port] such as https://app.example.com or"
                     " http://localhost:5173 (no path, query or wildcard), or '*' alone")


class TLSFiles(Spec):
    """The server's certificate and private key, PEM files; relative paths start at the config's folder."""

    cert: str = Field(description="Certificate chain (PEM), e.g. fullchain.pem.")
    key: str = Field(description="Private key (PEM, unencrypted), e.g. privkey.pem.")


class ServerSection(Spec):
    """Where the server listens and which keys it accepts."""

    host: str = Field("127.0.0.1", description="Bind address; loopback unless told otherwise.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port (0 picks a free one).")
    api_keys: list[SecretStr] = Field(
        default_factory=list,
        description="Accepted client keys; write them as ${VAR} so they come from the environment.",
    )
    max_sessions: int = Field(
        50, ge=1, description="Realtime sessions this process runs at once; the next client gets HTTP 503 with"
        " Retry-After (code server_busy). 50 listening sessions take about one core (see Sizing in the README)."
    )
    drain_s: float = Field(
        10.0, ge=0, le=600, description="On SIGTERM: how long replies in flight may finish before sessions are"
        " closed (1012, reconnect) and the process exits; no new session is admitted meanwhile."
    )
    max_sessions_per_key: int | None = Field(
        None, ge=1, description="Realtime sessions one API key may have open at once in this process; the next"
        " gets HTTP 429 too_many_sessions (none: no per-key limit)."
    )
    rest_audio_concurrency: int = Field(
        1, ge=1, le=16, description="Speech and transcription REST calls synthesized or transcribed at once (each"
        " kind apart); they share the cores with the realtime sessions."
    )
    rest_audio_queue: int = Field(
        8, ge=0, le=1000, description="REST audio calls of each kind that may wait for their turn; the next gets"
        " HTTP 429 with Retry-After (code server_busy / Inworld code 8)."
    )
    cors_origins: list[Annotated[str, AfterValidator(_origin)]] = Field(
        default_factory=list,
        description="Browser origins (scheme://host[:port], e.g. https://app.example.com) whose pages may call"
        " the HTTP routes (CORS), or [\"*\"] for any; empty: no CORS headers at all.",
    )
    tls: TLSFiles | None = Field(
        None, description="Serve https:// and wss:// with this certificate and key (PEM); default: plain http/ws."
    )
    ws_compression: bool = Field(
        False, description="Accept WebSocket per-message deflate when a client offers it (base64 speech shrinks"
        " by ~40%). Off by default: it costs the server CPU on every event each way (~0.2% of a core per"
        " listening session, more while replies stream)."
    )

    @field_validator("cors_origins")
    @classmethod
    def _star_alone(cls, origins: list[str]) -> list[str]:
        if "*" in origins and len(origins) > 1:
            raise ValueError("'*' allows every origin: give it alone, or list origins without it")
        return origins

    @model_validator(mode="after")
    def _star_needs_keys(self) -> ServerSection:
        if "*" in self.cors_origins and not any(k.get_secret_value() for k in self.api_keys):
            raise ValueError("cors_origins: ['*'] without api_keys lets any web page the user opens read and"
                             " delete memory and use the router: set server.api_keys, or list the origins")
        return self


class TransportSection(Spec):
    """How audio reaches a session and leaves it."""

    type: Literal["websocket", "webrtc", "both"] = Field(
        "both", description="Realtime transports served: WebSocket, WebRTC (SDP offer/answer), or both."
    )

    def serves(self, kind: str) -> bool:
        """Whether sessions over ``kind`` ('websocket' or 'webrtc') are served."""
        return self.type in (kind, "both")
    audio_in_sample_rate: int = Field(16000, description="Rate the pipeline processes input audio at (Hz).")
    audio_out_sample_rate: int = Field(24000, description="Rate of the audio the pipeline produces (Hz).")


class SessionSection(Spec):
    """Defaults every new session starts with."""

    instructions: str = Field(
        "You are a helpful voice companion.", description="System prompt (the persona)."
    )
    greeting: str | None = Field(
        None, description="Spoken first when a session opens; off (null) by default."
    )
    user_id: str = Field("user", description="User id used when the client gives none.")
    character: str | None = Field(
        None, description="A character card (SillyTavern V2/V3, .json or .png) under this config's folder:"
        " its persona, greeting, lorebook and post-history instructions shape every session."
    )


class LlamaCppProvider(Spec):
    """An in-process llama.cpp model (GGUF), loaded once and shared by all sessions."""

    kind: Literal["llamacpp"]
    model: str = Field(
        "smollm2-135m-instruct",
        description="A packaged model name (see `run-pipeline --list-models`) or a path to a .gguf file.",
    )
    replicas: int = Field(
        1, ge=1, le=64, description="llama.cpp contexts on the same weights; each keeps its own KV cache."
    )
    n_ctx: int = Field(2048, ge=256, description="Context window in tokens.")
    state_cache_mb: int = Field(
        0, ge=0, description="RAM for the KV state of conversations a replica switches away from (0 = off)."
    )
    n_threads: int | None = Field(None, ge=1, description="CPU threads; default: all cores.")
    warm_prefix: bool = Field(
        True, description="Prefill the session instructions at start so the first turn is fast."
    )


class OpenAICompatibleProvider(Spec):
    """Any OpenAI-compatible HTTP endpoint: vLLM, llama.cpp server, OpenAI, Groq, ..."""

    kind: Literal["openai"]
    base_url: str | None = Field(None, description="Base URL including /v1, e.g. http://127.0.0.1:8001/v1.")
    replicas: list[str] = Field(
        default_factory=list, description="Several base URLs serving the same models (e.g. a vLLM fleet)."
    )
    api_key: SecretStr | None = Field(None, description="Bearer key; write it as ${VAR}.")
    timeout_s: float = Field(60.0, gt=0, description="Whole-request timeout in seconds.")
    continue_final_message: bool = Field(
        False, description="vLLM: resume a broken reply by extending it (continue_final_message) after failover."
    )
    metrics_url: str | None = Field(
        None, description="vLLM only: where its Prometheus /metrics is, for prefix-cache hit rates."
    )
    context_window: int | None = Field(
        None, ge=256, description="The served model's window in tokens; sessions keep every request under it"
        " (folding old turns into a summary). Unset: requests are not fitted."
    )

    @model_validator(mode="after")
    def _one_address(self) -> OpenAICompatibleProvider:
        if bool(self.base_url) == bool(self.replicas):
            raise ValueError("give either base_url or replicas (a list of base URLs)")
        return self

    def urls(self) -> list[str]:
        """Every replica's base URL."""
        return [self.base_url] if self.base_url else list(self.replicas)


Provider = Annotated[LlamaCppProvider | OpenAICompatibleProvider, Field(discriminator="kind")]


class RouterSection(Spec):
    """The LLM layer: named providers; models are addressed as ``provider/model``."""

    providers: dict[str, Provider] = Field(
        default_factory=lambda: {"local": LlamaCppProvider(kind="llamacpp")},
        description="Provider name → provider spec.",
    )
    routing: Literal["sticky", "round_robin"] = Field(
        "sticky", description="How a request picks a replica: by its user (KV-cache reuse) or in turn."
    )
    ttft_timeout_s: float = Field(
        8.0, gt=0, description="Move on to the next model when no first token arrives within this."
    )
    cooldown_s: float = Field(15.0, ge=0, description="How long a failed replica is skipped before it is retried.")
    aliases: dict[str, str] = Field(
        default_factory=dict,
        description="Model names clients send → the 'provider/model' that serves them (e.g."
        " 'deepseek/deepseek-v4-pro': local/qwen2.5-coder-0.5b-instruct); replies report the served name.",
    )


class MemorySection(Spec):
    """Per-user memory: durable facts, the rolling summary and recent turns, in one store."""

    store: str | None = Field(
        None, description="sqlite:///path (or a file path, relative to this config's folder) or a"
        " postgresql:// URL (write its password as ${VAR}); default: memory.db under $CADENCE_DATA_DIR"
        " (~/.cache/cadence)."
    )
    persist: bool = Field(
        True, description="Keep each named user's memory in the store (a session without a user id keeps"
        " memory for itself only)."
    )
    resume_window_s: float = Field(
        900.0, ge=0, description="A session for the same user starting within this many seconds of the last"
        " one's last turn continues it (its recent turns restored); later ones start from facts and summary."
    )
    auto_summarize: bool = Field(True, description="Fold old turns into the rolling summary (off: they are dropped).")
    extract_facts: bool = Field(True, description="Remember what the user says about themself, as facts.")
    facts_max_tokens: int = Field(
        200, ge=0, le=4096, description="Budget of the facts block in the system prompt (about 4 characters a token)."
    )
    relevant_facts: int = Field(
        3, ge=0, le=20, description="Facts not in that block retrieved per turn by full-text search on the"
        " user's words."
    )
    router_api: bool = Field(
        False, description="Chat completions on the router API that name a `user` get that user's facts in"
        " their system prompt, and facts from their last user message are remembered (off: `user` only"
        " picks the replica)."
    )
    memory_model: str | None = Field(
        None, description="'provider/model' that extracts facts too (on top of the rules); use a capable"
        " model, a small one does not follow the format."
    )


class CadenceConfig(Spec):
    """A whole Cadence config file."""

    server: ServerSection = Field(default_factory=ServerSection)
    transport: TransportSection = Field(default_factory=TransportSection)
    session: SessionSection = Field(default_factory=SessionSection)
    router: RouterSection = Field(default_factory=RouterSection)
    memory: MemorySection = Field(default_factory=MemorySection)
    voices: dict[str, VoiceEntry] = Field(
        default_factory=dict, description="Named voices clients may ask for (audio.output.voice): name → an engine"
        " voice with its prosody. OpenAI's and Inworld's stock names alias onto these by gender, else onto the"
        " tts stage's voice."
    )
    tools: ToolSection = Field(
        default_factory=dict, description="Tools the server runs for the model: name → {function: module:name} (a"
        " Python callable) or {mcp: {command, args} | {url}} (every tool of an MCP server)."
    )
    pipeline: list[dict[str, Any]] = Field(
        description="Processor entries in frame order, each {type: NAME, ...params}."
    )
