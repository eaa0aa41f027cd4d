"""Admission of Realtime sessions: ``server.max_sessions`` in all and, per API key,
``server.max_sessions_per_key``. A client over the limit is refused before its session is
built (HTTP 503 with ``Retry-After`` on the WebSocket upgrade or the WebRTC offer, code
``server_busy``), so the sessions already running keep their share of the machine.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Any

from fastapi.responses import JSONResponse

RETRY_AFTER_S = 5  # what a refused client is told to wait before it tries again


def presented_key(headers: Any) -> str | None:
    """The API key a request carries: ``Authorization: Bearer|Basic <key>`` or the WebSocket
    subprotocol ``openai-insecure-api-key.<key>`` (browsers cannot set headers on a WebSocket)."""
    for protocol in headers.get("sec-websocket-protocol", "").split(","):
        protocol = protocol.strip()
        if protocol.startswith("openai-insecure-api-key."):
            return protocol.removeprefix("openai-insecure-api-key.")
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() in ("bearer", "basic") else None


class Slot:
    """One admitted session's place; ``release`` it when the session ends (idempotent)."""

    def __init__(self, admission: Admission, key: str):
        self._admission, self._key, self._held = admission, key, True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._admission._release(self._key)


class Admission:
    """Counts live sessions in all and per key (by a hash: keys are never kept in the clear)."""

    def __init__(self, max_sessions: int, max_per_key: int | None):
        self.max_sessions = max_sessions
        self.max_per_key = max_per_key
        self.live = 0
        self.draining = False  # the process is stopping: nothing new is admitted
        self._per_key: Counter[str] = Counter()

    @property
    def full(self) -> bool:
        return self.draining or self.live >= self.max_sessions

    def reserve(self, key: str | None) -> Slot | JSONResponse:
        """A slot for one more session, or the refusal to answer with (503 busy or draining,
        429 for a key at its own limit)."""
        digest = hashlib.sha256((key or "").encode("utf-8", "replace")).hexdigest()[:16]
        if self.draining:
            return _busy("the server is shutting down; reconnect (to another server behind the balancer)")
        if self.full:
            return _busy(f"the server runs {self.live} sessions, its limit (server.max_sessions); try again"
                         f" in {RETRY_AFTER_S} s or on another server")
        if self.max_per_key is not None and self._per_key[digest] >= self.max_per_key:
            # 429, not 503: a balancer retries a 503 on another server, where the key's count starts anew
            return JSONResponse({"error": {
                "type": "rate_limit_error", "code": "too_many_sessions", "param": None,
                "message": f"this API key has {self._per_key[digest]} sessions open on this server, its limit"
                           " (server.max_sessions_per_key); close one first"}},
                status_code=429, headers={"Retry-After": str(RETRY_AFTER_S)})
        self.live += 1
        self._per_key[digest] += 1
        return Slot(self, digest)

    def _release(self, digest: str) -> None:
        self.live -= 1
        self._per_key[digest] -= 1
        if self._per_key[digest] <= 0:
            del self._per_key[digest]  # bounded by the sessions open, not by every key ever seen

    def load(self) -> dict[str, Any]:
        """For /healthz and /readyz: what runs and the limit."""
        return {"sessions": self.live, "max_sessions": self.max_sessions, "full": self.full,
                "draining": self.draining}


def _busy(message: str) -> JSONResponse:
    return JSONResponse({"error": {"type": "server_error", "code": "server_busy", "param": None, "message": message}},
                        status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})
