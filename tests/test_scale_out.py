"""Two `run-pipeline` workers behind HAProxy (deploy/haproxy.cfg, as shipped), sharing one
PostgreSQL store: a worker killed with SIGKILL mid-conversation, the openai SDK reconnects
through the balancer, lands on the other worker, and the conversation goes on from what was
said before the kill. Skipped, saying why, where HAProxy or PostgreSQL is not installed (the
README's test command installs both)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import urllib.request

import pytest

from conftest import ROOT, start_server
from servers import closed_port
from test_memory import CONFIG, connect, memory_state, reply
from test_realtime import collect, of, text_turn

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None,
                                reason="the scale-out test needs HAProxy: apt-get install -y haproxy")

# test_memory's worker (context + the embedded LLM, seeded), its store the shared one
WORKER = CONFIG.format(store="${CADENCE_MEMORY_STORE}", resume=900) + "transport: {type: websocket}\n"


def sessions(url: str) -> int:
    return json.load(urllib.request.urlopen(f"{url}/healthz", timeout=10))["sessions"]


async def wait_ready(url: str, timeout: float = 30) -> None:
    for _ in range(int(timeout / 0.2)):
        try:
            if urllib.request.urlopen(f"{url}/readyz", timeout=2).status == 200:
                return
        except OSError:
            pass
        await asyncio.sleep(0.2)
    raise AssertionError(f"{url} never became ready")


async def test_a_sigkilled_workers_client_resumes_on_the_other_through_haproxy(tmp_path, postgres_url):
    config = tmp_path / "worker.yaml"
    config.write_text(WORKER)
    env = {**os.environ, "CADENCE_MEMORY_STORE": postgres_url, "CADENCE_DATA_DIR": str(tmp_path)}
    ports = [closed_port(), closed_port()]
    started = await asyncio.gather(*(asyncio.to_thread(start_server, config, "--port", str(p), env=env)
                                     for p in ports))
    workers = {url: proc for proc, url in started}
    front = f"127.0.0.1:{closed_port()}"
    balancer = subprocess.Popen(
        ["haproxy", "-db", "-f", str(ROOT / "deploy" / "haproxy.cfg")], stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "CADENCE_BIND": front, "CADENCE_WORKER_1": f"127.0.0.1:{ports[0]}",
             "CADENCE_WORKER_2": f"127.0.0.1:{ports[1]}"})
    try:
        await wait_ready(f"http://{front}")
        reconnects = []
        conn = await connect(f"http://{front}", "zed", on_reconnecting=lambda e: reconnects.append(e) or None).enter()
        assert memory_state(await collect(conn, until="session.created"))["resumed"] is False
        assert reply(await text_turn(conn, "My dog is called Biscuit and he loves the beach.")).strip()
        serving = [url for url in workers if sessions(url) == 1]
        assert len(serving) == 1, "the session should be on exactly one worker"
        killed = workers[serving[0]]
        killed.send_signal(signal.SIGKILL)  # no drain, no goodbye: the socket just dies
        killed.wait(30)

        events = await collect(conn, until="session.created", timeout=60)  # the SDK's own reconnect
        assert reconnects, "the SDK did not reconnect by itself"
        survivor = next(url for url in workers if url != serving[0])
        assert sessions(survivor) == 1  # through the balancer, to the worker still up
        assert memory_state(events)["resumed"] is True
        events += await collect(conn, until="conversation.item.done", timeout=10)
        restored = [(e.item.role, e.item.content[0].text) for e in of(events, "conversation.item.added")]
        assert restored[0] == ("user", "My dog is called Biscuit and he loves the beach."), restored
        answer = reply(await text_turn(conn, "What is my dog called?"))
        assert "Biscuit" in answer, answer
        await conn.close()
    finally:
        balancer.terminate()
        for proc in workers.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in [balancer, *workers.values()]:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
