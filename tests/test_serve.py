"""`run-pipeline configs/nova.yaml` serves the router: the openai SDK with failover and `user`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from openai import AuthenticationError, OpenAI

from conftest import NOVA, run_cli, start_server
from servers import closed_port

LOCAL = "local/qwen2.5-coder-0.5b-instruct"
MESSAGES = [{"role": "user", "content": "Hi Nova! What's your favourite star?"}]


DEAD_URL = f"http://127.0.0.1:{closed_port()}/v1"


@pytest.fixture
def nova_with_dead_provider(tmp_path) -> Path:
    text = NOVA.read_text().replace(
        "router:\n  providers:\n",
        f"router:\n  providers:\n    dead: {{kind: openai, base_url: '{DEAD_URL}'}}\n",
    )
    path = tmp_path / "nova.yaml"
    path.write_text(text)
    return path


def test_openai_sdk_with_failover_and_user(nova_with_dead_provider):
    proc, url = start_server(nova_with_dead_provider)
    try:
        client = OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        reply = client.chat.completions.create(
            model="dead/big-model", messages=MESSAGES, user="alice", max_tokens=20, extra_body={"models": [LOCAL]}
        )
        assert reply.choices[0].message.content.strip()
        assert [(a["provider"], a["status"]) for a in reply.metadata["attempts"]] == [
            ("dead", "connection_error"), ("local", "ok")]
        stream = client.chat.completions.create(model=LOCAL, messages=MESSAGES, user="alice", max_tokens=20,
                                                stream=True, stream_options={"include_usage": True})
        chunks = list(stream)
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip()
        assert chunks[-1].usage.prompt_tokens_details.cached_tokens > 0
        health = client._client.get(f"{url}/healthz").json()
        assert health["status"] == "ok" and health["cooling_down"] == [f"dead/{DEAD_URL}"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_keys_are_required_when_configured():
    env = {**os.environ, "CADENCE_API_KEY": "test-key-123"}
    proc, url = start_server(NOVA, env=env)
    try:
        with pytest.raises(AuthenticationError):
            OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0).models.list()
        models = OpenAI(base_url=f"{url}/v1", api_key="test-key-123", max_retries=0).models.list()
        assert LOCAL in [m.id for m in models.data]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "test-key-123" not in proc.stdout.read()  # never logged


def test_refuses_a_public_bind_without_a_key():
    env = {k: v for k, v in os.environ.items() if k != "CADENCE_API_KEY"}
    result = run_cli(str(NOVA), "--host", "0.0.0.0", env=env, timeout=60)
    assert result.returncode == 1
    assert "refusing to listen on 0.0.0.0 with no API key" in result.stderr


def test_openai_sdk_realtime_spoken_turn_against_run_pipeline(speak, nova_server):
    """The acceptance path: the real `run-pipeline configs/nova.yaml` process, the SDK's realtime client."""
    import asyncio
    import base64

    import numpy as np
    from openai import AsyncOpenAI

    from conftest import word_error_rate

    url = nova_server
    question = "What is the capital of France?"
    audio = np.concatenate([speak(question, rate=24000), np.zeros(24000 * 3, dtype=np.int16)]).tobytes()

    async def talk():
        client = AsyncOpenAI(api_key="unused", websocket_base_url=url.replace("http://", "ws://") + "/v1")
        async with client.realtime.connect(model="cadence") as conn:
            async def send():
                for i in range(0, len(audio), 960):
                    await conn.send({"type": "input_audio_buffer.append",
                                     "audio": base64.b64encode(audio[i:i + 960]).decode()})
                    await asyncio.sleep(0.02)
            sender = asyncio.create_task(send())
            transcript, reply, audio_deltas = None, None, 0
            async for event in conn:
                if event.type == "conversation.item.input_audio_transcription.completed":
                    transcript = event.transcript
                elif event.type == "response.output_audio.delta":
                    audio_deltas += 1
                elif event.type == "response.done":
                    reply = event.response
                    break
            sender.cancel()
            return transcript, reply, audio_deltas

    transcript, reply, audio_deltas = asyncio.run(asyncio.wait_for(talk(), 90))
    assert word_error_rate(question, transcript) <= 0.2, transcript
    assert reply.status == "completed" and reply.output[0].content[0].transcript.strip()
    assert audio_deltas > 10


async def test_websocket_compression_is_declined_unless_configured(nova_server):
    import websockets

    # websockets offers permessage-deflate by default, as browsers and the openai SDK do
    async with websockets.connect(nova_server.replace("http://", "ws://") + "/v1/realtime") as ws:
        assert "permessage-deflate" not in (ws.response.headers.get("Sec-WebSocket-Extensions") or "")
        assert (await ws.recv())  # session.created, uncompressed
