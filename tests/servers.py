"""Run ASGI apps on loopback inside the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import uvicorn

from cadence.server import WS_MAX_QUEUE, WS_MAX_SIZE, WS_PROTOCOL


class _Server(uvicorn.Server):
    """A uvicorn server that sets ``ready`` once its sockets listen."""

    def __init__(self, config: uvicorn.Config):
        super().__init__(config)
        self.ready = asyncio.Event()

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self.ready.set()


@contextlib.asynccontextmanager
async def serving(app, *, start_timeout: float = 30.0, port: int = 0):
    """Serve ``app`` on 127.0.0.1 at ``port`` (a free one by default); yields its base URL."""
    server = _Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                                    ws=WS_PROTOCOL, ws_max_size=WS_MAX_SIZE, ws_max_queue=WS_MAX_QUEUE))
    task = asyncio.create_task(server.serve())
    ready = asyncio.create_task(server.ready.wait())
    done, _ = await asyncio.wait({task, ready}, timeout=start_timeout, return_when=asyncio.FIRST_COMPLETED)
    if ready not in done:
        ready.cancel()
        if task in done:
            task.result()  # the server's own startup error
            raise RuntimeError("uvicorn exited before it started serving")
        server.should_exit = True
        await task
        raise TimeoutError(f"uvicorn did not start serving within {start_timeout}s")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def closed_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
