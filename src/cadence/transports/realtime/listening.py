"""``providerData.responsiveness`` (fillers) and ``providerData.backchannel`` → the params of
the ``filler`` and ``backchannel`` stages (Inworld's field names, validated like YAML)."""

from __future__ import annotations

import base64
from typing import Any

from pydantic import BaseModel, ValidationError

from cadence.processors.backchannel import LLM_DECIDER_FIELDS, BackchannelParams
from cadence.processors.filler import GENERATED_FILLER_FIELDS, FillerParams
from cadence.transports.realtime.protocol import ProtocolError, error_param

# providerData key → (its stage's params, the fields a small-LLM variant reads: reported, not acted on)
KNOBS: dict[str, tuple[type[BaseModel], tuple[str, ...]]] = {
    "responsiveness": (FillerParams, GENERATED_FILLER_FIELDS),
    "backchannel": (BackchannelParams, LLM_DECIDER_FIELDS),
}


def _own_fields(key: str, data: Any) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ProtocolError("invalid_value", f"providerData.{key} must be an object",
                            param=f"session.providerData.{key}")
    return {k: v for k, v in data.items() if k not in KNOBS[key][1]}


def stage_settings(key: str, yaml: BaseModel | None, data: Any) -> Any:
    """The YAML's params (or the defaults) with the session's ``providerData[key]`` over them;
    ProtocolError naming the field for a wrong value or an unknown key."""
    params_type = KNOBS[key][0]
    base = yaml.model_dump() if yaml is not None else {}
    try:
        return params_type.model_validate({**base, **_own_fields(key, data)})
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        param = error_param(error["loc"], ("session", "providerData", key))
        raise ProtocolError("invalid_value", f"{param}: {error['msg']}", param=param) from exc


def check_knobs(provider_data: dict[str, Any], defaults: Any) -> None:
    """ProtocolError naming the field for knobs a session cannot have (``defaults``: the
    session's SessionDefaults): a wrong value, a stage the pipeline lacks, ``require_pause``
    without pause verdicts."""
    for key, stage, yaml in (("responsiveness", "filler", defaults.filler),
                             ("backchannel", "backchannel", defaults.backchannel)):
        data = provider_data.get(key)
        stage_settings(key, yaml, data)
        if yaml is None and isinstance(data, dict) and data.get("enabled"):
            raise ProtocolError("unsupported", f"providerData.{key} needs a `{stage}` stage in the pipeline",
                                param=f"session.providerData.{key}.enabled")
    asked = provider_data.get("backchannel")
    if isinstance(asked, dict) and asked.get("require_pause") is True and not defaults.pause_verdicts:
        raise ProtocolError("unsupported", "providerData.backchannel.require_pause needs the `turn` stage to judge"
                            " pauses (its text_model)", param="session.providerData.backchannel.require_pause")


def listens_in_vain(provider_data: dict[str, Any], defaults: Any, nothing_to_listen_with: bool) -> bool:
    """Backchannels are on, but the session has no user turn the server hears or no voice."""
    return nothing_to_listen_with and stage_settings("backchannel", defaults.backchannel,
                                                     provider_data.get("backchannel")).enabled


def unsupported(provider_data: dict[str, Any]) -> list[str]:
    """The small-LLM fields the session was given (``responsiveness.small_model``, ...)."""
    found = []
    for key, (_, fields) in KNOBS.items():
        data = provider_data.get(key)
        if isinstance(data, dict):
            found += [f"{key}.{k}" for k in fields if k in data]
    return found


def backchannel_event(frame: Any, wire: bytes) -> dict[str, Any]:
    """``cadence.backchannel``: a listener's "mm-hm" over WebSocket, in the session's output
    format. Outside any response or item (so strict clients that skip unknown events lose
    nothing); play it at once, over nothing else (it only comes while the user talks)."""
    return {"type": "cadence.backchannel", "text": frame.text, "audio": base64.b64encode(wire).decode(),
            "duration_ms": round(len(frame.audio) / 2 / frame.sample_rate * 1000)}
