"""``GET /v1/voices``: the voices a session may ask for, with the stock names that alias onto each."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from cadence.voice.catalog import VoiceCatalog


def voice_routes(catalog: VoiceCatalog) -> APIRouter:
    """Routes over ``catalog`` (the config's voices)."""
    api = APIRouter()

    @api.get("/v1/voices")
    async def voices() -> JSONResponse:
        return JSONResponse(catalog.listing())

    return api
