"""vLLM's prefix-cache counters, read from its Prometheus /metrics.

vLLM (V1) exports ``vllm:prefix_cache_queries`` and ``vllm:prefix_cache_hits`` as
counters of tokens (``_total`` in the exposition). The hit rate over an interval is
Δhits / Δqueries; the router reads them when its own /metrics is scraped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

if TYPE_CHECKING:
    from cadence.router.router import Router

_baselines: dict[str, tuple[float, float]] = {}


def parse_prefix_cache(text: str) -> tuple[float, float] | None:
    """(queries, hits) summed over every label set, or None when vLLM exports neither."""
    queries = hits = 0.0
    seen = False
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in ("vllm:prefix_cache_queries_total", "vllm:prefix_cache_queries"):
                queries += sample.value
                seen = True
            elif sample.name in ("vllm:prefix_cache_hits_total", "vllm:prefix_cache_hits"):
                hits += sample.value
                seen = True
    return (queries, hits) if seen else None


def hit_rate(url: str, queries: float, hits: float) -> float | None:
    """Δhits/Δqueries since the first reading of ``url`` (None until queries grow)."""
    base_queries, base_hits = _baselines.setdefault(url, (queries, hits))
    if queries < base_queries:  # the server restarted: start over
        _baselines[url] = (queries, hits)
        return None
    delta = queries - base_queries
    return (hits - base_hits) / delta if delta > 0 else None


async def refresh_vllm_metrics(router: Router) -> None:
    """Read every configured vLLM metrics_url (1 s timeout each) into the router's gauges."""
    for name, provider in router.section.providers.items():
        url = getattr(provider, "metrics_url", None)
        if not url:
            continue
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1.0)) as session:
                async with session.get(url) as response:
                    counters = parse_prefix_cache(await response.text())
        except (aiohttp.ClientError, TimeoutError, ValueError):
            continue
        if counters:
            rate = hit_rate(url, *counters)
            if rate is not None:
                router.metrics.vllm_prefix_cache_hit_rate.labels(name, url).set(rate)
