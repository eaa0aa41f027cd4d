"""The idle timeout of a Realtime session (``idle_timeout_ms`` / ``inactivityTimeoutSeconds``).

pipecat's ``UserIdleController`` arms its timer only when bot *audio* stops, so a session
answering in text would never time out and the setting would be silently ignored; this
timer is started by the session when a response's output ends, whatever its modality.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class IdleTimer:
    """Calls ``on_idle(since_ms)`` once when ``start``ed and not ``cancel``led in time."""

    def __init__(self, on_idle: Callable[[float], None]):
        self._on_idle = on_idle
        self._task: asyncio.Task | None = None

    def start(self, timeout_ms: int | None, since_ms: float) -> None:
        self.cancel()
        if timeout_ms:
            self._task = asyncio.get_running_loop().create_task(self._wait(timeout_ms, since_ms))

    def cancel(self) -> None:
        if self._task:
            self._task.cancel()
            self._task = None

    async def _wait(self, timeout_ms: int, since_ms: float) -> None:
        await asyncio.sleep(timeout_ms / 1000)
        self._task = None
        self._on_idle(since_ms)
