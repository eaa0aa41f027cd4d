"""server.max_sessions and max_sessions_per_key: the next client is refused with HTTP 503,
Retry-After and code server_busy before its session is built; /readyz tells a balancer."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
import websockets
from pydantic import SecretStr

from cadence.server import create_app
from servers import serving


async def open_session(url: str, key: str):
    ws = await websockets.connect(url + "/v1/realtime", additional_headers={"Authorization": f"Bearer {key}"})
    assert json.loads(await asyncio.wait_for(ws.recv(), 30))["type"] == "session.created"
    return ws


async def refused(url: str, key: str) -> websockets.exceptions.InvalidStatus:
    with pytest.raises(websockets.exceptions.InvalidStatus) as info:
        await websockets.connect(url + "/v1/realtime", additional_headers={"Authorization": f"Bearer {key}"})
    return info.value


async def test_past_max_sessions_the_next_client_gets_a_503_it_can_act_on(nova_factory, monkeypatch):
    server = nova_factory.config.config.server
    monkeypatch.setattr(server, "api_keys", [SecretStr("k1"), SecretStr("k2")])
    monkeypatch.setattr(server, "max_sessions", 2)
    monkeypatch.setattr(server, "max_sessions_per_key", None)
    async with serving(create_app(nova_factory)) as base, aiohttp.ClientSession() as http:
        url = base.replace("http://", "ws://")
        first, second = await open_session(url, "k1"), await open_session(url, "k2")
        refusal = await refused(url, "k1")
        assert refusal.response.status_code == 503 and refusal.response.headers["Retry-After"] == "5"
        body = json.loads(refusal.response.body)
        assert body["error"]["code"] == "server_busy" and "server.max_sessions" in body["error"]["message"]
        async with http.get(base + "/readyz") as ready:
            assert ready.status == 503 and (await ready.json())["sessions"] == 2
        async with http.post(base + "/v1/realtime/calls", data="v=0\r\n", headers={
                "Authorization": "Bearer k1", "Content-Type": "application/sdp"}) as call:
            assert call.status == 503 and call.headers["Retry-After"] == "5"  # WebRTC too
        await first.close()
        for _ in range(50):  # the slot comes back once the session has ended
            async with http.get(base + "/healthz") as health:
                if (await health.json())["sessions"] < 2:
                    break
            await asyncio.sleep(0.1)
        async with http.get(base + "/readyz") as ready:
            assert ready.status == 200 and (await ready.json())["ready"] is True
        third = await open_session(url, "k1")  # admitted again, and the server is healthy
        await asyncio.gather(second.close(), third.close())


async def test_max_sessions_per_key_limits_one_key_not_the_others(nova_factory, monkeypatch):
    server = nova_factory.config.config.server
    monkeypatch.setattr(server, "api_keys", [SecretStr("k1"), SecretStr("k2")])
    monkeypatch.setattr(server, "max_sessions_per_key", 1)
    async with serving(create_app(nova_factory)) as base:
        url = base.replace("http://", "ws://")
        mine = await open_session(url, "k1")
        refusal = await refused(url, "k1")
        assert refusal.response.status_code == 429 and refusal.response.headers["Retry-After"] == "5"
        error = json.loads(refusal.response.body)["error"]
        assert error["code"] == "too_many_sessions" and "server.max_sessions_per_key" in error["message"]
        theirs = await open_session(url, "k2")
        await asyncio.gather(mine.close(), theirs.close())
