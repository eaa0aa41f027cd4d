"""Per-user memory through the real stack: facts and summary persisted per user, in a new
session's prompt, over REST, resumed after a reconnect (the openai SDK's own), kept
across a SIGKILL. The embedded Qwen answers; the SQLite and PostgreSQL stores both run."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import textwrap

import aiohttp
import pytest
from openai import AsyncOpenAI

from cadence.config import load_config_text, validate
from conftest import start_server
from cadence.pipelines.builder import PipelineFactory
from cadence.server import create_app
from servers import closed_port, serving
from test_realtime import collect, of, spy_on_router, text_turn

CONFIG = textwrap.dedent("""
    session:
      instructions: >-
        You are Nova, a companion talking with the user. Remember what the user tells you
        and answer in one short sentence.
    router:
      providers:
        local: {{kind: llamacpp, model: qwen2.5-coder-0.5b-instruct, n_ctx: 2048}}
    memory:
      store: "{store}"
      resume_window_s: {resume}
    pipeline:
      - {{type: context}}
      - {{type: llm, model: local/qwen2.5-coder-0.5b-instruct, max_tokens: 30, seed: 7}}
""")


def factory_for(store_url: str, store, resume: float = 0) -> PipelineFactory:
    return PipelineFactory(validate(load_config_text(CONFIG.format(store=store_url, resume=resume))), store)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'memory.db'}"
    return request.getfixturevalue("postgres_url")


def connect(url: str, user: str, **options):
    client = AsyncOpenAI(api_key="unused", websocket_base_url=f"{url.replace('http://', 'ws://')}/v1")
    return client.realtime.connect(model="cadence", extra_query={"user": user}, **options)


def memory_state(events) -> dict:
    return events[-1].session.model_dump()["providerData"]["memory"]["state"]


class Rest:
    """The memory REST routes, through aiohttp: ``(status, json)`` per call."""

    def __init__(self, base: str):
        self.base = base

    async def call(self, method: str, path: str) -> tuple[int, dict]:
        async with aiohttp.ClientSession() as http, http.request(method, self.base + path) as response:
            return response.status, await response.json()


def reply(events) -> str:
    return "".join(e.delta for e in of(events, "response.output_text.delta"))


async def test_a_users_facts_outlive_the_session_and_can_be_forgotten(store_url, store, monkeypatch):
    factory = factory_for(store_url, store)
    await factory.memory.open()
    await factory.memory.forget("ana")  # the PostgreSQL server is shared by the tests
    requests = spy_on_router(factory, monkeypatch)
    async with serving(create_app(factory)) as base:
        rest = Rest(base)
        async with connect(base, "ana") as conn:
            created = await collect(conn, until="session.created")
            assert memory_state(created)["persistent"] and memory_state(created)["facts"] == 0
            for said in ("Hi! My name is Priya and I have a dog named Rex.", "I really love ramen."):
                assert reply(await text_turn(conn, said)).strip()
        remembered = (await rest.call("GET", "/v1/memory/ana"))[1]
        texts = [f["text"] for f in remembered["facts"]]
        assert texts == ["The user's name is Priya.", "The user has a dog named Rex.", "The user really loves ramen."]

        async with connect(base, "ana") as conn:  # a new session, past the resume window
            created = await collect(conn, until="session.created")
            assert memory_state(created) | {"summaries": 0} == {
                "user": "ana", "persistent": True, "resumed": False, "facts": 3, "pinned_facts": 3,
                "summary_chars": 0, "summaries": 0, "store_errors": 0}
            assert not of(created, "conversation.item.added")  # nothing resumed: a fresh conversation
            answer = reply(await text_turn(conn, "What is my dog's name?"))
        system = requests[-1]["messages"][0]["content"]
        assert "- The user has a dog named Rex." in system and "Priya" in system
        assert "Rex" in answer, answer

        dog = next(f for f in remembered["facts"] if "Rex" in f["text"])
        assert (await rest.call("DELETE", f"/v1/memory/ana/facts/{dog['id']}"))[1]["deleted"]
        assert (await rest.call("DELETE", f"/v1/memory/ana/facts/{dog['id']}"))[0] == 404
        assert "Rex" not in str((await rest.call("GET", "/v1/memory/ana"))[1]["facts"])
        status, bad = await rest.call("DELETE", "/v1/memory/ana/facts/rex")
        assert status == 400 and bad["error"]["param"] == "fact_id"
        assert (await rest.call("DELETE", "/v1/memory/ana"))[1] == {"user": "ana", "deleted": True}
        status, gone = await rest.call("GET", "/v1/memory/ana")
        assert status == 404 and gone["error"]["code"] == "user_not_found"


async def test_without_a_user_memory_stays_in_the_session(tmp_path, store):
    factory = factory_for(f"sqlite:///{tmp_path / 'memory.db'}", store)
    async with serving(create_app(factory)) as base:
        client = AsyncOpenAI(api_key="unused", websocket_base_url=f"{base.replace('http://', 'ws://')}/v1")
        async with client.realtime.connect(model="cadence") as conn:
            created = await collect(conn, until="session.created")
            assert memory_state(created)["persistent"] is False
            await text_turn(conn, "My name is Priya.")
            await conn.send({"type": "session.update", "session": {"type": "realtime"}})
            updated = await collect(conn, until="session.updated")
            assert memory_state(updated)["facts"] == 1  # known in the session ...
    assert not (tmp_path / "memory.db").exists()  # ... and written nowhere


async def test_the_sdk_reconnects_after_a_server_restart_and_the_conversation_goes_on(tmp_path, store, monkeypatch):
    factory = factory_for(f"sqlite:///{tmp_path / 'memory.db'}", store, resume=900)
    requests = spy_on_router(factory, monkeypatch)
    port = closed_port()
    reconnects = []
    async with serving(create_app(factory), port=port) as base:
        conn = await connect(base, "bo", on_reconnecting=lambda event: reconnects.append(event) or None).enter()
        await collect(conn, until="session.created")
        assert reply(await text_turn(conn, "My sister is called Maya and she lives in Lisbon.")).strip()
    async with serving(create_app(factory), port=port):  # the server is back (same store)
        events = await collect(conn, until="session.created")
        assert reconnects, "the SDK did not reconnect by itself"
        assert memory_state(events)["resumed"] is True
        for _ in range(2):  # the last session's two turns, as items of this conversation
            events += await collect(conn, until="conversation.item.done", timeout=10)
        restored = [(e.item.role, e.item.content[0].text) for e in of(events, "conversation.item.added")]
        assert restored[0] == ("user", "My sister is called Maya and she lives in Lisbon.") and len(restored) == 2
        answer = reply(await text_turn(conn, "Where does my sister live?"))
        await conn.close()
    messages = requests[-1]["messages"]
    assert {"role": "user", "content": "My sister is called Maya and she lives in Lisbon."} in messages
    assert "Lisbon" in answer, answer


async def test_facts_survive_a_sigkill_mid_session(tmp_path):
    store_path = tmp_path / "memory.db"
    config = tmp_path / "nova.yaml"
    port = closed_port()
    config.write_text(CONFIG.format(store=f"sqlite:///{store_path}", resume=0)
                      + f"server: {{port: {port}}}\ntransport: {{type: websocket}}\n")
    base = f"http://127.0.0.1:{port}"

    async def start() -> subprocess.Popen:  # on the same port each time; its output drained
        process, url = await asyncio.to_thread(start_server, config, "--port", str(port))
        assert url == base, url
        return process

    process = await start()
    try:
        conn = await connect(base, "cy").enter()
        await collect(conn, until="session.created")
        await text_turn(conn, "My name is Cyrus and I play the cello.")
        await text_turn(conn, "My favorite food is pho.")
        await conn.send({"type": "conversation.item.create", "item": {"type": "message", "role": "user",
                         "content": [{"type": "input_text", "text": "I have a cat named Tofu."}]}})
        await conn.send({"type": "response.create"})
        await collect(conn, until="response.created")
        process.send_signal(signal.SIGKILL)  # mid-turn: this turn may be lost, the earlier ones not
        process.wait(30)
        with contextlib.suppress(Exception):  # the connection died with the server
            await conn.close()
    finally:
        process.kill()
    process = await start()
    try:
        texts = [f["text"] for f in (await Rest(base).call("GET", "/v1/memory/cy"))[1]["facts"]]
        assert texts[:3] == ["The user's name is Cyrus.", "The user plays the cello.", "The user's favorite food is pho."]
        async with connect(base, "cy") as conn:
            created = await collect(conn, until="session.created")
            assert memory_state(created)["facts"] >= 3 and memory_state(created)["pinned_facts"] >= 3
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


async def test_the_router_api_remembers_the_user_it_is_told_of(tmp_path, store, monkeypatch):
    text = CONFIG.format(store=f"sqlite:///{tmp_path / 'memory.db'}", resume=0).replace(
        "  resume_window_s: 0\n", "  resume_window_s: 0\n  router_api: true\n")
    assert "router_api: true" in text
    factory = PipelineFactory(validate(load_config_text(text)), store)
    requests = spy_on_router(factory, monkeypatch)

    async def ask(said: str, user: str | None) -> str:
        body = {"model": "local/qwen2.5-coder-0.5b-instruct", "max_tokens": 20, "seed": 7,
                "messages": [{"role": "system", "content": "You are a helpful companion."},
                             {"role": "user", "content": said}]}
        if user:
            body["user"] = user
        async with aiohttp.ClientSession() as http, http.post(f"{base}/v1/chat/completions", json=body) as response:
            assert response.status == 200, await response.text()
            return (await response.json())["choices"][0]["message"]["content"]

    async with serving(create_app(factory)) as base:
        await ask("My parrot is called Kiwi.", "dee")
        answer = await ask("What is my parrot called?", "dee")
        await ask("What is my parrot called?", None)
    assert requests[1]["messages"][0]["content"].endswith("- The user's parrot is called Kiwi.")
    assert "Kiwi" in answer, answer
    assert requests[2]["messages"][0]["content"] == "You are a helpful companion."  # no user, no memory
