"""Router parts on their own: the hash ring, cooldowns, vLLM metrics parsing, cache accounting."""

from __future__ import annotations

import json

import pytest
from openai import AsyncOpenAI

import fake_backend
from cadence.config import load_config_text, validate
from cadence.pipelines.builder import PipelineFactory
from cadence.router.hashing import HashRing
from cadence.router.health import Health
from cadence.router.vllm import hit_rate, parse_prefix_cache
from cadence.server import create_app
from servers import serving

USERS = [f"user-{i}" for i in range(2000)]


def test_sticky_ring_is_stable_and_balanced():
    ring = HashRing(["a", "b", "c", "d"])
    homes = {u: ring.pick(u) for u in USERS}
    assert homes == {u: HashRing(["d", "c", "b", "a"]).pick(u) for u in USERS}  # order-independent
    counts = {r: list(homes.values()).count(r) for r in "abcd"}
    assert all(300 < n < 700 for n in counts.values()), counts


def test_removing_a_replica_moves_only_its_users():
    before = {u: HashRing(["a", "b", "c", "d"]).pick(u) for u in USERS}
    after = {u: HashRing(["a", "b", "d"]).pick(u) for u in USERS}
    moved = {u for u in USERS if before[u] != after[u]}
    assert moved == {u for u in USERS if before[u] == "c"}
    # and skipping a dead replica without rebuilding the ring gives the same answer
    ring = HashRing(["a", "b", "c", "d"])
    assert all(ring.pick(u, exclude={"c"}) == after[u] for u in USERS)


def test_health_cooldown_lasts_cooldown_s_and_restarts():
    now = [100.0]
    health = Health(cooldown_s=10, clock=lambda: now[0])
    assert health.usable("x") and health.cooling() == []
    health.failed("x")
    assert not health.usable("x") and health.cooling() == ["x"]
    assert health.usable("y")  # only the failed replica cools down
    now[0] += 9.9
    assert not health.usable("x")  # the whole cooldown, not a part of it
    health.failed("x")  # failing again restarts it
    now[0] += 9.9
    assert not health.usable("x") and health.cooling() == ["x"]
    now[0] += 0.2
    assert health.usable("x") and health.cooling() == []
    health.failed("x")
    health.succeeded("x")  # a success ends it at once
    assert health.usable("x") and health.cooling() == []


def test_vllm_prefix_cache_counters_parse_and_rate():
    text = (
        "# TYPE vllm:prefix_cache_queries_total counter\n"
        'vllm:prefix_cache_queries_total{engine="0",model_name="m"} 100.0\n'
        'vllm:prefix_cache_queries_total{engine="1",model_name="m"} 50.0\n'
        "# TYPE vllm:prefix_cache_hits_total counter\n"
        'vllm:prefix_cache_hits_total{engine="0",model_name="m"} 30.0\n'
        'vllm:prefix_cache_hits_total{engine="1",model_name="m"} 20.0\n'
    )
    assert parse_prefix_cache(text) == (150.0, 50.0)
    assert parse_prefix_cache("# TYPE other counter\nother_total 1\n") is None
    url = "http://test-replica/metrics"
    assert hit_rate(url, 150.0, 50.0) is None  # first reading is the baseline
    assert hit_rate(url, 250.0, 130.0) == pytest.approx(0.8)  # Δhits/Δqueries


@pytest.fixture(scope="module")
async def fake_url():
    async with serving(fake_backend.app) as url:
        yield url


async def test_backend_usage_and_vllm_counters_reach_metrics(fake_url, store):
    config = {"router": {"providers": {"gpu": {"kind": "openai", "base_url": f"{fake_url}/ok/v1",
                                               "metrics_url": f"{fake_url}/vllm/metrics"}}},
              "pipeline": [{"type": "vad"}]}
    factory = PipelineFactory(validate(load_config_text(json.dumps(config))), store)
    async with serving(create_app(factory)) as url:
        client = AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        reply = await client.chat.completions.create(model="gpu/m", messages=[{"role": "user", "content": "hi"}])
        # vLLM's usage fields pass through: prompt_tokens_details.cached_tokens
        assert reply.usage.prompt_tokens == 20 and reply.usage.prompt_tokens_details.cached_tokens == 16

        http = client._client  # the SDK's own HTTP client, reused for plain GETs
        await http.get(f"{url}/metrics")  # first scrape: the baseline reading of vLLM's counters
        fake_backend.vllm_counters.update(queries=1200.0, hits=550.0)
        metrics = (await http.get(f"{url}/metrics")).text
        assert 'cadence_router_cached_prompt_tokens_total{model="m",provider="gpu",replica="' in metrics
        line = next(l for l in metrics.splitlines() if l.startswith("cadence_router_cached_prompt_tokens_total"))
        assert line.endswith(" 16.0")
        rate = next(l for l in metrics.splitlines() if l.startswith("cadence_router_vllm_prefix_cache_hit_rate{"))
        assert rate.endswith(" 0.75")  # (550-400)/(1200-1000)
        assert 'cadence_router_attempts_total{model="m",provider="gpu",replica=' in metrics
        assert "cadence_router_ttft_seconds_bucket" in metrics
        models = (await http.get(f"{url}/v1/models")).json()
        assert {m["id"] for m in models["data"]} == {"gpu/*"}
