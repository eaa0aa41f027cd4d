"""Prometheus metrics of the router (served at /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class RouterMetrics:
    """Token counters per provider/model/replica, latencies, and attempts by outcome."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        labels = ("provider", "model", "replica")
        self.prompt_tokens = Counter(
            "cadence_router_prompt_tokens", "Prompt tokens sent to backends", labels, registry=self.registry
        )
        self.cached_tokens = Counter(
            "cadence_router_cached_prompt_tokens",
            "Prompt tokens the backend served from its KV/prefix cache",
            labels,
            registry=self.registry,
        )
        self.completion_tokens = Counter(
            "cadence_router_completion_tokens", "Completion tokens generated", labels, registry=self.registry
        )
        self.attempts = Counter(
            "cadence_router_attempts", "Backend attempts by outcome", (*labels, "status"), registry=self.registry
        )
        self.request_latency = Histogram(
            "cadence_router_request_seconds", "Whole request latency (all attempts)", registry=self.registry,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32),
        )
        self.ttft = Histogram(
            "cadence_router_ttft_seconds", "Time to first token of the successful attempt", labels,
            registry=self.registry, buckets=(0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4),
        )
        self.vllm_prefix_cache_hit_rate = Gauge(
            "cadence_router_vllm_prefix_cache_hit_rate",
            "vLLM prefix-cache hit rate since the router first read it (Δhits/Δqueries)",
            ("provider", "replica"),
            registry=self.registry,
        )
