"""``/v1/memory/{user}``: what the server remembers about a user, and forgetting it.

Forgetting is real deletion in the store. A live session of that user keeps what it
already holds in its prompt until it ends (it is not reached into).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse


def memory_routes(memory: Any) -> APIRouter:
    """Routes over ``memory`` (a cadence.memory.service.MemoryService)."""
    api = APIRouter()

    def error(status: int, code: str, message: str, param: str | None = None) -> JSONResponse:
        return JSONResponse({"error": {"type": "invalid_request_error", "code": code, "message": message,
                                       "param": param}}, status_code=status)

    async def guarded(call, user: str) -> Any:
        if not user.strip() or len(user) > 256:
            return error(400, "invalid_value", "the user id must be 1 to 256 characters", "user")
        try:
            return await call()
        except LookupError as exc:
            return error(404, "memory_not_persisted", str(exc))

    @api.get("/v1/memory/{user}")
    async def describe(user: str) -> JSONResponse:
        async def call():
            found = await memory.describe(user)
            if found is None:
                return error(404, "user_not_found", f"nothing is remembered about user {user!r}", "user")
            return JSONResponse(found)
        return await guarded(call, user)

    @api.delete("/v1/memory/{user}")
    async def forget(user: str) -> JSONResponse:
        async def call():
            deleted = await memory.forget(user)
            return JSONResponse({"user": user, "deleted": deleted})
        return await guarded(call, user)

    @api.delete("/v1/memory/{user}/facts/{fact_id}")
    async def delete_fact(user: str, fact_id: str) -> JSONResponse:
        async def call():
            if not fact_id.isdigit():
                return error(400, "invalid_value", f"fact id must be an integer, got {fact_id!r}", "fact_id")
            if not await memory.delete_fact(user, int(fact_id)):
                return error(404, "fact_not_found", f"user {user!r} has no fact {fact_id}", "fact_id")
            return JSONResponse({"user": user, "id": int(fact_id), "deleted": True})
        return await guarded(call, user)

    return api
