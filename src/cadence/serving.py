"""The process's HTTP server: uvicorn, with a drain on SIGTERM.

On the first SIGTERM (or SIGINT) the server stops admitting Realtime sessions (503 with
``Retry-After`` on new upgrades and offers, ``/readyz`` 503 so a balancer steers away), lets
the replies in flight finish for up to ``server.drain_s``, then stops: uvicorn closes the
remaining WebSockets with 1012 (service restart), which tells clients to reconnect (with a
shared PostgreSQL store they resume on another worker). A second signal stops at once.
"""

from __future__ import annotations

import asyncio
import signal
import time
from types import FrameType
from typing import Any

import uvicorn
from loguru import logger


AFTER_DRAIN_S = 7.0  # uvicorn's graceful timeout (2 s) and the lifespan's bounded close (5 s)


class DrainingServer(uvicorn.Server):
    """uvicorn's Server whose first exit signal drains the app's sessions before stopping."""

    def __init__(self, config: uvicorn.Config, app_state: Any, drain_s: float):
        super().__init__(config)
        self._state = app_state
        self._drain_s = drain_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining = False

    async def serve(self, sockets=None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets=sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._draining or self._loop is None or sig not in (signal.SIGTERM, signal.SIGINT):
            self.force_exit = self._draining  # a second signal: no more waiting
            return super().handle_exit(sig, frame)
        self._draining = True
        self._captured_signals.append(sig)  # uvicorn re-raises it once stopped: the exit status says SIGTERM
        self._loop.call_soon_threadsafe(lambda: self._loop.create_task(self._drain()))

    async def _drain(self) -> None:
        try:
            admission, sessions = self._state.admission, self._state.realtime_sessions
            admission.draining = True
            # What follows the drain (closing sockets, cancelling, the lifespan's close) takes up
            # to ~7 s of its own: the replies get what is left of drain_s.
            deadline = time.monotonic() + max(0.0, self._drain_s - AFTER_DRAIN_S)
            busy = [s for s in sessions if s.busy]
            logger.warning(f"draining: {len(sessions)} sessions, {len(busy)} replying; stopping within"
                           f" {self._drain_s:g} s")
            while busy and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
                busy = [s for s in sessions if s.busy]
            if busy:
                logger.warning(f"drain deadline: {len(busy)} replies cut")
        finally:
            self.should_exit = True
