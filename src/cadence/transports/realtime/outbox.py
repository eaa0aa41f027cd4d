"""A session's server events on their way to the client: in order, never blocking the
pipeline, and bounded.

A client that stops reading makes every send wait (TCP backpressure), and the events behind
it pile up: audio deltas at ~64 KB a second of speech. Past ``MAX_BACKLOG_BYTES`` the
session stops queueing and closes the connection (1008, "client not reading", a warning in
the log) instead of growing the server's memory. A send that fails for any other reason
(the socket broke, an event that cannot be encoded) closes it too (1011): a session never
lingers as an open socket that says nothing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from loguru import logger

from cadence.transports.realtime.protocol import without_surrogates

MAX_BACKLOG_BYTES = 8 * 1024 * 1024  # ~2 minutes of 24 kHz PCM audio deltas waiting to be sent
_SMALL_EVENT_BYTES = 256  # what an event without audio counts for

Closer = Callable[[int, str], Awaitable[None]]


class Outbox:
    """Server events of one session, sent by one writer task."""

    def __init__(self, send: Callable[[dict[str, Any]], Awaitable[None]], close: Closer | None = None,
                 max_bytes: int | None = None):
        self._send = send
        self._close = close
        self._max_bytes = max_bytes or MAX_BACKLOG_BYTES
        self._queue: asyncio.Queue[tuple[dict[str, Any], int] | None] = asyncio.Queue()
        self._bytes = 0
        self.closed = False  # no more events are taken (overflow or a failed send)
        self._writer: asyncio.Task | None = None

    @property
    def backlog_bytes(self) -> int:
        return self._bytes

    def start(self) -> None:
        self._writer = asyncio.get_running_loop().create_task(self._run())

    def put(self, event: dict[str, Any]) -> None:
        """Queue ``event``; past the backlog bound the connection is closed instead."""
        if self.closed:
            return
        size = sum(len(v) for k, v in event.items() if k in ("delta", "audio") and isinstance(v, str))
        if not size:  # any other event may be large too (an echoed session, an item): its JSON's size
            size = max(_SMALL_EVENT_BYTES, len(json.dumps(event, ensure_ascii=False, default=str)))
        if self._bytes + size > self._max_bytes:
            self._give_up(1008, "client not reading", f"{self._bytes // 1024} KiB of events are waiting for a client"
                          f" that does not read (the bound is {self._max_bytes // 1024} KiB)")
            return
        self._bytes += size
        self._queue.put_nowait((event, size))

    async def finish(self) -> None:
        """Send what is queued, then stop the writer (nothing more is taken)."""
        self.closed = True
        self._queue.put_nowait(None)
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)

    async def _run(self) -> None:
        while (entry := await self._queue.get()) is not None:
            event, size = entry
            self._bytes -= size
            try:
                await self._send_once(event)
            except Exception as exc:
                gone = isinstance(exc, OSError) or "Disconnect" in type(exc).__name__ or "Closed" in type(exc).__name__
                self._give_up(1011, "send failed", f"sending {event.get('type')!r} failed: {exc!r}", quiet=gone)
                return

    async def _send_once(self, event: dict[str, Any]) -> None:
        try:
            await self._send(event)
        except UnicodeEncodeError:  # a lone surrogate that came from somewhere: send it replaced
            await self._send(without_surrogates(event))

    def _give_up(self, code: int, reason: str, detail: str, quiet: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        (logger.debug if quiet else logger.warning)(f"realtime: closing the connection ({code} {reason}): {detail}")
        while not self._queue.empty():  # free the backlog now
            self._queue.get_nowait()
        self._bytes = 0
        self._queue.put_nowait(None)
        if self._close is not None:
            asyncio.get_running_loop().create_task(self._close_quietly(code, reason))

    async def _close_quietly(self, code: int, reason: str) -> None:
        try:
            await self._close(code, reason)
        except Exception as exc:  # already gone
            logger.debug(f"realtime: close failed: {exc}")
