"""``providerData.responsiveness`` (Inworld's filler settings) → the ``filler`` stage's params."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from cadence.processors.filler import GENERATED_FILLER_FIELDS, FillerParams
from cadence.transports.realtime.protocol import ProtocolError, error_param

PARAM = ("session", "providerData", "responsiveness")


def _own_fields(data: Any) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ProtocolError("invalid_value", "providerData.responsiveness must be an object",
                            param="session.providerData.responsiveness")
    return {k: v for k, v in data.items() if k not in GENERATED_FILLER_FIELDS}


def filler_settings(yaml: FillerParams, data: Any) -> FillerParams:
    """The YAML's filler params with the session's fields over them; ProtocolError naming the
    field for a wrong value or an unknown key."""
    try:
        return FillerParams.model_validate({**yaml.model_dump(), **_own_fields(data)})
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        param = error_param(error["loc"], PARAM)
        raise ProtocolError("invalid_value", f"{param}: {error['msg']}", param=param) from exc


def unsupported(data: Any) -> list[str]:
    """The fields of a generated filler the session was given (reported, not acted on)."""
    if not isinstance(data, dict):
        return []
    return [f"responsiveness.{k}" for k in GENERATED_FILLER_FIELDS if k in data]
