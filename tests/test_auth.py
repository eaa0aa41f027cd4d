"""Malformed credentials are refused with 401, never a 500 or a dropped connection, and a
bad handshake never keeps the server from shutting down. Model-free: a VAD-only pipeline."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from cadence.config import load_config_text, validate
from cadence.models import ModelStore
from cadence.pipelines.builder import PipelineFactory
from cadence.server import create_app
from servers import serving

KEY = "s3cret-clé"  # a key with a non-ASCII character is a key like any other
ROUTES = [("GET", "/v1/models"), ("POST", "/v1/chat/completions"), ("GET", "/v1/voices"), ("GET", "/metrics"),
          ("GET", "/v1/memory/alice"), ("POST", "/v1/realtime/calls"), ("DELETE", "/v1/memory/alice")]


def app():
    config = validate(load_config_text(
        '{"server": {"api_keys": ["%s"]}, "pipeline": [{"type": "vad"}]}' % KEY))
    return create_app(PipelineFactory(config, ModelStore()))


async def handshake(port: int, headers: bytes, path: bytes = b"/v1/realtime") -> bytes:
    """A raw WebSocket upgrade with these extra header lines; the server's first bytes back."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" + headers + b"\r\n")
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(200), 5)
    finally:
        writer.close()


@pytest.mark.parametrize("authorization", [
    "Bearer s3cret-cl\u00c3\u00a9x",  # UTF-8 bytes of a wrong non-ASCII key, as a client sends them
    "Bearer ключ", "Token " + KEY, "Bearer", "", "Basic \u00ff\u00fe",
])
async def test_a_malformed_or_wrong_key_is_a_401_on_every_route(authorization):
    async with serving(app()) as url, aiohttp.ClientSession() as http:
        for method, path in ROUTES:
            headers = {"Authorization": authorization.encode("utf-8").decode("latin-1")} if authorization else {}
            async with http.request(method, url + path, headers=headers) as reply:
                assert reply.status == 401, (method, path, reply.status, await reply.text())
                assert (await reply.json())["error"]["code"] == "invalid_api_key"
        async with http.get(url + "/v1/models?api_key=" + KEY) as reply:  # a key in the query is not a key
            assert reply.status == 401


async def test_the_right_non_ascii_key_is_accepted():
    async with serving(app()) as url:
        port = int(url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        # The key's UTF-8 bytes in the header, as clients send them (raw: HTTP libraries differ here).
        writer.write(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer "
                     + KEY.encode("utf-8") + b"\r\n\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]


async def test_bad_websocket_handshakes_get_a_401_and_shutdown_is_not_blocked():
    async with serving(app()) as url:
        port = int(url.rsplit(":", 1)[1])
        for headers in [b"Sec-WebSocket-Protocol: realtime, openai-insecure-api-key.s\xc3\xa9cret\r\n",
                        b"Sec-WebSocket-Protocol: realtime, \xff\xfe\r\n",
                        b"Authorization: Bearer \xff\r\n",
                        b"Authorization: Bearer " + KEY.encode() + b"x\r\n"]:
            for path in (b"/v1/realtime", b"/api/v1/realtime/session?key=k&protocol=realtime"):
                answer = await handshake(port, headers, path)
                assert answer.startswith(b"HTTP/1.1 401"), (headers, path, answer[:80])
        started = time.monotonic()
    assert time.monotonic() - started < 5  # nothing left hanging that the shutdown waits for
