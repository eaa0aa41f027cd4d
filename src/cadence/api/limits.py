"""A bound on the REST audio work one process takes on at once.

Speech and transcription run on the same cores as the realtime sessions, so a burst of REST
calls must not queue without a bound: ``AudioWorkQueue`` lets ``running`` jobs run, keeps up
to ``waiting`` more in line, and refuses the rest at once (the route answers 429 with
``Retry-After``), before any status line is sent. A streamed reply holds its place until its
last chunk is sent or the client goes away.
"""

from __future__ import annotations

import asyncio


class QueueFull(Exception):
    """No place in line: the caller should answer 429."""


class Ticket:
    """One admitted job: ``async with ticket`` waits for a running slot and gives it back."""

    def __init__(self, queue: AudioWorkQueue):
        self._queue = queue
        self._holding = False
        self._done = False

    async def __aenter__(self) -> Ticket:
        await self._queue._slots.acquire()
        self._holding = True
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        """Leave the line (idempotent: a stream's end and its cleanup may both call it)."""
        if self._holding:
            self._holding = False
            self._queue._slots.release()
        if not self._done:
            self._done = True
            self._queue.admitted -= 1


class AudioWorkQueue:
    """At most ``running`` jobs at once and ``waiting`` more admitted; the next is refused."""

    def __init__(self, running: int, waiting: int):
        self.running = running
        self.waiting = waiting
        self.admitted = 0
        self._slots = asyncio.Semaphore(running)

    def admit(self) -> Ticket:
        """A ticket, or QueueFull when ``running + waiting`` jobs are already admitted."""
        if self.admitted >= self.running + self.waiting:
            raise QueueFull(f"{self.admitted} audio requests are already running or waiting (server.rest_audio_"
                            f"concurrency {self.running} + server.rest_audio_queue {self.waiting}); retry shortly")
        self.admitted += 1
        return Ticket(self)
