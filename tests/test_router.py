"""The router over HTTP with the official openai SDK: failover, stickiness, cache accounting, errors."""

from __future__ import annotations

import json

import pytest
from openai import AsyncOpenAI, BadRequestError, InternalServerError, NotFoundError, RateLimitError

import fake_backend
from cadence.config import load_config_text, validate
from cadence.pipelines.builder import PipelineFactory
from cadence.server import create_app
from servers import closed_port, serving

LOCAL = "local/smollm2-135m-instruct"
HELLO = [{"role": "system", "content": "You are Nova, a curious companion."},
         {"role": "user", "content": "Hi Nova, how are you?"}]


@pytest.fixture(scope="module")
async def fake_url():
    async with serving(fake_backend.app) as url:
        yield url


def router_config(fake_url: str, **router_keys) -> str:
    providers = {
        "local": {"kind": "llamacpp", "model": "smollm2-135m-instruct"},
        "dead": {"kind": "openai", "base_url": f"http://127.0.0.1:{closed_port()}/v1"},
        **{mode: {"kind": "openai", "base_url": f"{fake_url}/{mode}/v1"}
           for mode in ("ok", "e500", "e429", "e429ra", "e400", "stall", "drop", "cut")},
        "fleet": {"kind": "openai", "replicas": [f"{fake_url}/r{i}/v1" for i in range(4)]},
    }
    router = {"providers": providers, "ttft_timeout_s": 1.5, "cooldown_s": 30,
              "aliases": {"deepseek/deepseek-v4-pro": LOCAL}, **router_keys}
    return json.dumps({"router": router, "pipeline": [{"type": "vad"}]})


@pytest.fixture
async def client(fake_url, store):
    factory = PipelineFactory(validate(load_config_text(router_config(fake_url))), store)
    async with serving(create_app(factory)) as url:
        yield AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)


def attempts(metadata) -> list[tuple[str, str]]:
    return [(a["provider"], a["status"]) for a in metadata["attempts"]]


async def test_non_stream_and_stream_with_user(client):
    reply = await client.chat.completions.create(model=LOCAL, messages=HELLO, max_tokens=20, user="alice")
    assert reply.choices[0].message.content.strip()
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
    assert attempts(reply.metadata) == [("local", "ok")]

    text, usage, metadata = "", None, None
    stream = await client.chat.completions.create(model=LOCAL, messages=HELLO, max_tokens=20, user="alice", stream=True)
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        usage = chunk.usage or usage
        metadata = (chunk.model_extra or {}).get("metadata") or metadata
    assert text.strip() and attempts(metadata) == [("local", "ok")]
    # The same prompt again: all but the last prompt token come from the KV cache.
    assert usage.prompt_tokens_details.cached_tokens >= usage.prompt_tokens - 1


@pytest.mark.parametrize("primary, failure", [
    ("dead", "connection_error"), ("e500", "http_500"), ("e429", "http_429"), ("stall", "ttft_timeout"),
])
async def test_failover_to_the_next_model(client, primary, failure):
    reply = await client.chat.completions.create(
        model=f"{primary}/some-model", messages=HELLO, max_tokens=12, extra_body={"models": [LOCAL]}
    )
    assert reply.choices[0].message.content.strip()
    assert attempts(reply.metadata) == [(primary, failure), ("local", "ok")]
    assert all(isinstance(a["latencyMs"], int) for a in reply.metadata["attempts"])


async def test_stream_broken_mid_reply_continues_without_repeating(client):
    stream = await client.chat.completions.create(
        model="drop/m", messages=HELLO, stream=True, extra_body={"models": ["ok/m"]}
    )
    pieces, metadata = [], None
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        metadata = (chunk.model_extra or {}).get("metadata") or metadata
    # The fallback starts the same story over; the listener hears each word once.
    assert "".join(pieces) == "".join(fake_backend.FULL)
    assert attempts(metadata) == [("drop", "stream_broken"), ("ok", "ok")]
    # The fallback was asked to continue after what was already said.
    last = fake_backend.calls[-1]
    assert last["messages"][-1] == {"role": "assistant", "content": "".join(fake_backend.PARTIAL)}


async def test_stream_broken_mid_reply_continues_on_the_embedded_model(client):
    stream = await client.chat.completions.create(
        model="drop/m", messages=HELLO, stream=True, max_tokens=15, extra_body={"models": [LOCAL]}
    )
    text, metadata = "", None
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        metadata = (chunk.model_extra or {}).get("metadata") or metadata
    assert text.startswith("".join(fake_backend.PARTIAL)) and len(text) > len("".join(fake_backend.PARTIAL))
    assert text.count("Once upon a time") == 1
    assert attempts(metadata) == [("drop", "stream_broken"), ("local", "ok")]


async def test_a_failed_backend_is_listed_as_cooling_down(client, fake_url):
    # (the router's own order, skipping and expiry: tests/unit/test_router_failover.py)
    reply = await client.chat.completions.create(model="e500/m", messages=HELLO, extra_body={"models": ["ok/m"]})
    assert attempts(reply.metadata) == [("e500", "http_500"), ("ok", "ok")]
    health = (await client._client.get(str(client.base_url.copy_with(path="/healthz")))).json()
    # keyed provider/replica, the replica being the base URL the attempt reports
    assert reply.metadata["attempts"][0]["replica"] == f"{fake_url}/e500/v1"
    assert health["cooling_down"] == [f"e500/{fake_url}/e500/v1"]


async def test_all_backends_failing_is_a_503_that_lists_the_attempts(client):
    with pytest.raises(InternalServerError) as info:
        await client.chat.completions.create(model="e500/m", messages=HELLO, extra_body={"models": ["dead/m"]})
    assert info.value.status_code == 503
    assert [(a["provider"], a["model"], a["status"]) for a in info.value.body["attempts"]] == [
        ("e500", "m", "http_500"), ("dead", "m", "connection_error")]
    assert "http_500" in info.value.body["message"] and "connection_error" in info.value.body["message"]


async def test_a_backend_400_is_not_retried(client):
    before = len(fake_backend.calls)
    with pytest.raises(BadRequestError) as info:
        await client.chat.completions.create(model="e400/m", messages=HELLO, extra_body={"models": ["ok/m"]})
    assert info.value.status_code == 400 and "bad field" in info.value.body["message"]
    assert attempts(info.value.body) == [("e400", "http_400")]
    assert [c["mode"] for c in fake_backend.calls[before:]] == ["e400"]  # the fallback was never asked


async def test_sticky_users_stay_on_their_replica(client):
    homes = {}
    for _ in range(3):
        for user in [f"user-{i}" for i in range(12)]:
            reply = await client.chat.completions.create(model="fleet/m", messages=HELLO, user=user)
            replica = reply.metadata["attempts"][0]["replica"]
            assert f"replica r{replica.split('/r')[1].split('/')[0]} says hi." == reply.choices[0].message.content
            assert homes.setdefault(user, replica) == replica
    assert len(set(homes.values())) >= 3  # users spread over the fleet


async def test_bad_requests_get_openai_style_errors(client):
    with pytest.raises(NotFoundError, match="unknown provider 'nope'"):
        await client.chat.completions.create(model="nope/x", messages=HELLO)
    with pytest.raises(NotFoundError, match="serves only local/smollm2-135m-instruct"):
        await client.chat.completions.create(model="local/gpt-9", messages=HELLO)
    with pytest.raises(BadRequestError) as info:
        await client.chat.completions.create(model=LOCAL, messages=[])
    assert info.value.body["param"] == "messages" and "non-empty list" in info.value.body["message"]
    with pytest.raises(BadRequestError) as info:
        await client.chat.completions.create(model=LOCAL, messages=[{"content": "no role"}])
    assert info.value.body["param"] == "messages[0]"
    with pytest.raises(BadRequestError) as info:
        await client.chat.completions.create(model=LOCAL, messages=HELLO, extra_body={"models": "local"})
    assert info.value.body["param"] == "models"
    with pytest.raises(BadRequestError, match="provider/model"):
        await client.chat.completions.create(model="gpt-4", messages=HELLO)


async def test_a_clean_close_without_finish_reason_fails_over_over_http(client):
    stream = await client.chat.completions.create(
        model="cut/m", messages=HELLO, stream=True, extra_body={"models": ["anthropic/claude-sonnet-4-6", "ok/m"]})
    text, metadata = "", None
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        metadata = (chunk.model_extra or {}).get("metadata") or metadata
    assert text == "".join(fake_backend.FULL)  # not "Once upon a time" cut, nor told twice
    assert attempts(metadata) == [("cut", "stream_broken"), ("ok", "ok"), ("anthropic", "unknown_model")]


async def test_a_429_with_retry_after_is_answered_429_with_it_when_nothing_is_left(client):
    with pytest.raises(RateLimitError) as info:
        await client.chat.completions.create(model="e429ra/m", messages=HELLO)
    assert info.value.status_code == 429 and info.value.response.headers["retry-after"] == "7"
    assert info.value.body["code"] == "rate_limit_exceeded"
    assert attempts(info.value.body) == [("e429ra", "http_429")]
    reply = await client.chat.completions.create(model="e429ra/m", messages=HELLO, extra_body={"models": ["ok/m"]})
    assert attempts(reply.metadata) == [("ok", "ok")]  # it asked for 7 s: not asked again within them


async def test_an_aliased_model_name_is_served_and_listed(client):
    reply = await client.chat.completions.create(model="deepseek/deepseek-v4-pro", messages=HELLO, max_tokens=8)
    assert reply.choices[0].message.content.strip() and reply.model == LOCAL
    assert attempts(reply.metadata) == [("local", "ok")]
    assert "deepseek/deepseek-v4-pro" in [m.id for m in (await client.models.list()).data]


def test_an_alias_onto_nothing_served_is_a_config_error_with_its_line():
    text = "router:\n  aliases:\n    gpt-4o: nowhere/model\npipeline:\n  - {type: vad}\n"
    with pytest.raises(Exception) as info:
        validate(load_config_text(text))
    assert ":3:" in str(info.value) and "router.aliases.gpt-4o" in str(info.value), info.value
    assert "configured provider" in str(info.value)


async def test_a_non_streamed_reply_that_breaks_with_nothing_left_is_a_503_with_attempts(client):
    with pytest.raises(InternalServerError) as info:
        await client.chat.completions.create(model="cut/m", messages=HELLO)
    assert info.value.status_code == 503 and "without a finish_reason" in info.value.body["message"]
    assert attempts(info.value.body) == [("cut", "stream_broken")]
