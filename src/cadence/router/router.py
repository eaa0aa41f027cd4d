"""Route a chat request: resolve ``provider/model`` names, pick a replica, fail over.

Order of attempts: the request's ``model``, then each entry of ``models``. Within a model,
replicas are tried in the order the routing picks (sticky: the user's place on a hash
ring, so their KV cache stays warm; round_robin: in turn), skipping replicas in cooldown.
An attempt fails on a connection error, a timeout, HTTP 429/5xx, no first token within
``ttft_timeout_s``, or a stream that breaks (including one that ends cleanly without a
``finish_reason``: a proxy closing, a process dying between chunks); the next attempt
continues the reply after the text already delivered, so the listener never hears anything
twice. A 429's ``Retry-After`` sets that replica's cooldown; when nothing else is left the
request is answered 429 with the soonest ``Retry-After``.

``aliases`` map names clients send onto served models. An unknown name in ``models`` (the
fallback list) is skipped and reported (``unknown_model``); only an unknown ``model`` is
refused.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from openai import NotGiven, Omit
from openai.types.chat import ChatCompletionChunk
from openai.types.chat.chat_completion_chunk import ChoiceDelta, ChoiceDeltaToolCall
from openai.types.completion_usage import CompletionUsage

from cadence.errors import CadenceError, ConfigError
from cadence.models import ModelStore, resolve_model
from cadence.pipelines.schema import LlamaCppProvider, OpenAICompatibleProvider, RouterSection
from cadence.router.backends.base import Backend, BackendError, ChatRequest, make_chunk
from cadence.router.backends.llamacpp import LlamaCppBackend
from cadence.router.continuation import Dedupe
from cadence.router.backends.openai_compat import OpenAICompatibleBackend
from cadence.router.hashing import HashRing
from cadence.router.health import Health
from cadence.router.tool_calls import ToolCallMerger
from cadence.router.metrics import RouterMetrics

MAX_RETRY_AFTER_S = 300.0  # a longer Retry-After (or cooldown_s, if longer) is cut to this

# Request keys that are routing instructions, not sampling params for the backend.
_ROUTING_KEYS = {"model", "models", "messages", "stream", "stream_options", "user", "extra_body", "metadata"}


class RouterError(CadenceError):
    """A request the router cannot serve; ``status`` and ``param`` shape the HTTP error."""

    def __init__(self, message: str, *, param: str | None = None, status: int = 400, attempts: list | None = None,
                 retry_after: float | None = None):
        super().__init__(message)
        self.param = param
        self.status = status
        self.attempts = attempts or []
        self.retry_after = retry_after


@dataclass
class Attempt:
    """One try at one replica, as reported in ``metadata.attempts``."""

    provider: str
    model: str
    replica: str
    status: str
    latency_ms: int

    def public(self) -> dict[str, Any]:
        return {"provider": self.provider, "model": self.model, "replica": self.replica,
                "status": self.status, "latencyMs": self.latency_ms}


class _Pool:
    """A provider's replicas, with the ring that maps users to them."""

    def __init__(self, name: str, backends: list[Backend]):
        self.name = name
        self.backends = {b.replica: b for b in backends}
        self.ring = HashRing(self.backends)
        self._turn = itertools.count()

    def order(self, user: str | None, routing: str) -> list[str]:
        replicas = list(self.backends)
        if routing == "sticky" and user:
            return self.ring.order(user)
        start = next(self._turn) % len(replicas)
        return replicas[start:] + replicas[:start]


class Router:
    """Named providers from the config's ``router:`` section; models are ``provider/model``."""

    def __init__(self, section: RouterSection, store: ModelStore, metrics: RouterMetrics | None = None):
        self._section = section
        self._store = store
        self._pools: dict[str, _Pool] = {}
        self.health = Health(section.cooldown_s)
        self.metrics = metrics or RouterMetrics()

    @property
    def section(self) -> RouterSection:
        return self._section

    def models(self) -> list[str]:
        """``provider/model`` names served in-process (remote providers accept any model name)."""
        return [f"{name}/{p.model}" for name, p in self._section.providers.items() if isinstance(p, LlamaCppProvider)]

    def pool(self, provider_name: str) -> _Pool:
        """A provider's replicas, created (and for llama.cpp, loaded) on first use."""
        if provider_name not in self._pools:
            provider = self._section.providers[provider_name]
            if isinstance(provider, LlamaCppProvider):
                path = resolve_model(provider.model, what=f"router.providers.{provider_name}.model")
                # Keyed by provider too: two providers on one GGUF get contexts of their own
                # (e.g. summaries beside replies) over the same memory-mapped weights.
                backends: list[Backend] = [
                    self._store.get(
                        ("llamacpp", provider_name, str(path), provider.n_ctx, provider.n_threads,
                         provider.state_cache_mb, i),
                        lambda i=i: LlamaCppBackend(
                            path, model_name=provider.model, replica=str(i), n_ctx=provider.n_ctx,
                            n_threads=provider.n_threads, state_cache_mb=provider.state_cache_mb,
                        ),
                    )
                    for i in range(provider.replicas)
                ]
            else:
                key = provider.api_key.get_secret_value() if provider.api_key else None
                backends = [
                    OpenAICompatibleBackend(url, api_key=key, timeout_s=provider.timeout_s,
                                            continue_final_message=provider.continue_final_message)
                    for url in provider.urls()
                ]
            self._pools[provider_name] = _Pool(provider_name, backends)
        return self._pools[provider_name]

    def canonical(self, model: str) -> str:
        """The served ``provider/model`` behind ``model`` (an alias resolved); RouterError when
        nothing serves it."""
        provider_name, _, model_name = self._resolve(model, "model")
        return f"{provider_name}/{model_name}"

    def check_model(self, model: str) -> None:
        """Raise ConfigError unless ``model`` names a configured provider."""
        try:
            self._resolve(model, "model")
        except RouterError as exc:
            raise ConfigError(str(exc)) from exc

    def warm(self, model: str, messages: list[dict[str, Any]], *, user: str | None = None) -> int:
        """Load the model behind ``model`` and prefill ``messages`` on every in-process replica
        (only on ``user``'s replica when a user is given: the one their requests go to)."""
        provider_name, provider, _ = self._resolve(model, "model")
        if not isinstance(provider, LlamaCppProvider):
            return 0
        pool = self.pool(provider_name)
        backends = pool.backends.values()
        if user is not None and self._section.routing == "sticky":
            backends = [pool.backends[pool.ring.order(user)[0]]]
        counts = [b.warm(messages) for b in backends if provider.warm_prefix]  # type: ignore[attr-defined]
        return max(counts, default=0)

    def context_window(self, model: str) -> int | None:
        """The window in tokens of ``model``: the llama.cpp context size, or a remote provider's
        configured ``context_window`` (None when not configured)."""
        _, provider, _ = self._resolve(model, "model")
        return provider.n_ctx if isinstance(provider, LlamaCppProvider) else provider.context_window

    def count_tokens(self, model: str, messages: list[dict[str, Any]]) -> int:
        """Prompt tokens ``messages`` take on ``model``: exact for llama.cpp (its chat template
        and tokenizer), a conservative estimate (3 characters a token) for remote models."""
        provider_name, provider, _ = self._resolve(model, "model")
        if isinstance(provider, LlamaCppProvider):
            backend = next(iter(self.pool(provider_name).backends.values()))
            return backend.count_tokens(messages)  # type: ignore[attr-defined]
        return sum(len(str(m.get("content") or "")) // 3 + 8 for m in messages)

    def _resolve(self, model: Any, param: str) -> tuple[str, LlamaCppProvider | OpenAICompatibleProvider, str]:
        if not isinstance(model, str) or ("/" not in model and model not in self._section.aliases):
            raise RouterError(
                f"{param} must be 'provider/model' (e.g. {', '.join(self.models()) or 'local/name'}), got {model!r}",
                param=param,
            )
        provider_name, _, model_name = self._section.aliases.get(model, model).partition("/")
        provider = self._section.providers.get(provider_name)
        if provider is None:
            raise RouterError(
                f"unknown provider {provider_name!r} in {param} {model!r}; configured providers:"
                f" {', '.join(self._section.providers)}",
                param=param,
                status=404,
            )
        if isinstance(provider, LlamaCppProvider) and model_name != provider.model:
            raise RouterError(
                f"provider {provider_name!r} serves only {provider_name}/{provider.model}, not {model!r}",
                param=param,
                status=404,
            )
        return provider_name, provider, model_name

    def stream(self, params: dict[str, Any]) -> AsyncIterator[ChatCompletionChunk]:
        """Validate an OpenAI-style chat request now; stream its chunks when iterated.

        Raises RouterError at once for a bad request; an async iterator otherwise, whose
        last chunk carries ``usage`` and ``metadata.attempts``.
        """
        params = {k: v for k, v in params.items() if not isinstance(v, (NotGiven, Omit)) and v is not None}
        extra = params.get("extra_body") if isinstance(params.get("extra_body"), dict) else {}
        fallbacks = params.get("models", extra.get("models", []))
        if not isinstance(fallbacks, list) or not all(isinstance(m, str) for m in fallbacks):
            raise RouterError("models must be a list of 'provider/model' names", param="models")
        candidates = [self._resolve(params.get("model"), "model")]
        skipped: list[Attempt] = []  # fallbacks nothing here serves: reported, never a reason to refuse
        for i, name in enumerate(fallbacks):
            try:
                candidates.append(self._resolve(name, f"models[{i}]"))
            except RouterError:
                provider_name, _, model_name = name.partition("/")
                skipped.append(Attempt(provider_name, model_name, "", "unknown_model", 0))
        messages = params.get("messages")
        if not isinstance(messages, list) or not messages:
            raise RouterError("messages must be a non-empty list of {role, content} objects", param="messages")
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                raise RouterError(f"messages[{i}] must be an object with a string 'role'", param=f"messages[{i}]")
            if message["role"] not in ("system", "developer", "user", "assistant", "tool"):
                raise RouterError(f"messages[{i}].role {message['role']!r} is not a chat role", param=f"messages[{i}].role")
        sampling = {k: v for k, v in params.items() if k not in _ROUTING_KEYS}
        user = params.get("user") if isinstance(params.get("user"), str) else None
        return self._run(candidates, ChatRequest(messages=messages, params=sampling), user, skipped)

    async def _run(self, candidates, request: ChatRequest, user: str | None,
                   skipped: list[Attempt]) -> AsyncIterator[ChatCompletionChunk]:
        started = time.monotonic()
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        attempts: list[Attempt] = []
        delivered = ""
        last_error: BackendError | None = None
        plan, waits = self._plan(candidates, user)
        limited = False  # a 429 without Retry-After was among the failures
        for index, (provider_name, model_name, replica) in enumerate(plan):
            pool = self.pool(provider_name)
            attempt_request = ChatRequest(request.messages, request.params, continuation=delivered)
            attempt = Attempt(provider_name, model_name, replica, "ok", 0)
            attempts.append(attempt)
            t0 = time.monotonic()
            labels = (provider_name, model_name, replica)
            try:
                # The last attempt waits for a slow first token (up to the backend's own timeout):
                # giving up on it would only turn a slow reply into a failure.
                last = index == len(plan) - 1
                async for kind, payload in self._attempt(pool.backends[replica], model_name, attempt_request, t0,
                                                         labels, ttft_timeout=not last):
                    if kind == "text":
                        role = None if delivered else "assistant"  # OpenAI's first delta names the role
                        delivered += payload
                        yield _chunk(completion_id, f"{provider_name}/{model_name}",
                                     ChoiceDelta(role=role, content=payload))
                    elif kind == "finish":
                        attempt.latency_ms = int((time.monotonic() - t0) * 1000)
                        self.health.succeeded(f"{provider_name}/{replica}")
                        self.metrics.attempts.labels(*labels, "ok").inc()
                        self.metrics.request_latency.observe(time.monotonic() - started)
                        usage, finish_reason, tool_calls = payload
                        for i, call in enumerate(tool_calls):  # one chunk per call, as OpenAI streams them
                            role = None if delivered or i else "assistant"
                            yield _chunk(completion_id, f"{provider_name}/{model_name}", ChoiceDelta(
                                role=role, tool_calls=[ChoiceDeltaToolCall.model_validate(call.wire(i))]))
                            finish_reason = "tool_calls"
                        final = _chunk(completion_id, f"{provider_name}/{model_name}", ChoiceDelta(), finish_reason)
                        yield final
                        yield _usage_chunk(completion_id, f"{provider_name}/{model_name}", usage, attempts + skipped)
                        return
            except BackendError as exc:
                last_error = exc
                attempt.status = exc.kind
                attempt.latency_ms = int((time.monotonic() - t0) * 1000)
                self.metrics.attempts.labels(*labels, exc.kind).inc()
                if not exc.retryable:  # the request's fault (e.g. a 400), not the replica's: no cooldown
                    raise RouterError(str(exc), status=exc.status, attempts=attempts + skipped) from exc
                if exc.status == 429 and exc.retry_after is not None:
                    # A rate limit is the model's (gateways limit per model), and it said when to come back.
                    wait = min(max(exc.retry_after, 1.0), max(self._section.cooldown_s, MAX_RETRY_AFTER_S))
                    self.health.limit(f"{provider_name}/{replica}/{model_name}", wait)
                    waits.append(wait)
                else:
                    self.health.failed(f"{provider_name}/{replica}")
                    limited |= exc.status == 429
        tried = "; ".join(f"{a.provider}/{a.model}@{a.replica}: {a.status}" for a in attempts) or "none tried"
        if waits or limited:  # rate limited, not down: a 429, with when to come back where known
            wait = min(waits) if waits else None
            raise RouterError(f"rate limited upstream ({tried})" + (f"; retry after {wait:.0f}s" if wait else ""),
                              status=429, attempts=attempts + skipped, retry_after=wait)
        raise RouterError(
            f"every backend failed ({tried})" + (f"; last error: {last_error}" if last_error else ""),
            status=503 if attempts else 404,
            attempts=attempts + skipped,
        )

    def _plan(self, candidates, user: str | None) -> tuple[list[tuple[str, str, str]], list[float]]:
        """(provider, model, replica) in the order to try: healthy replicas of each model in
        turn, then, as a last resort, the ones cooling down; replicas whose ``Retry-After``
        has not passed are left out, their waits returned beside the plan."""
        healthy, cooling, waits = [], [], []
        for provider_name, _, model_name in candidates:
            for replica in self.pool(provider_name).order(user, self._section.routing):
                key = f"{provider_name}/{replica}"
                if (wait := self.health.limited_for(f"{key}/{model_name}")) > 0:
                    waits.append(wait)
                    continue
                (healthy if self.health.usable(key) else cooling).append((provider_name, model_name, replica))
        return healthy + cooling, waits

    async def _attempt(self, backend: Backend, model: str, request: ChatRequest, t0: float, labels,
                       ttft_timeout: bool = True):
        """Yield ("text", str) pieces and one ("finish", (usage, reason)); raise BackendError."""
        deadline = t0 + self._section.ttft_timeout_s if ttft_timeout else None
        stream = backend.stream(model, request).__aiter__()
        dedupe = Dedupe(request.continuation)
        calls = ToolCallMerger()  # held until the attempt finishes: a broken attempt leaves no half call
        first = True
        usage: CompletionUsage | None = None
        finish_reason: str | None = None
        try:
            while True:
                try:
                    timeout = max(0.0, deadline - time.monotonic()) if first and deadline is not None else None
                    chunk = await asyncio.wait_for(stream.__anext__(), timeout=timeout)
                except StopAsyncIteration:
                    break
                except TimeoutError as exc:
                    raise BackendError("ttft_timeout", f"no first token within {self._section.ttft_timeout_s}s") from exc
                if chunk.usage:
                    usage = chunk.usage
                for choice in chunk.choices[:1]:
                    if choice.delta and choice.delta.tool_calls:
                        if first:  # a call being written is the reply's first token too
                            first = False
                            self.metrics.ttft.labels(*labels).observe(time.monotonic() - t0)
                        calls.feed(choice.delta.tool_calls)
                    if choice.delta and choice.delta.content:
                        if first:
                            first = False
                            self.metrics.ttft.labels(*labels).observe(time.monotonic() - t0)
                        text = dedupe.feed(choice.delta.content)
                        if text:
                            yield "text", text
                    if choice.finish_reason:
                        finish_reason = choice.finish_reason
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose:
                await aclose()
        tail = dedupe.flush()
        if tail:
            yield "text", tail
        if finish_reason is None:  # a clean close mid-reply is still a cut reply
            raise BackendError("stream_broken", f"{backend.replica}: the stream ended without a finish_reason")
        if usage:
            cached = usage.prompt_tokens_details.cached_tokens if usage.prompt_tokens_details else 0
            self.metrics.prompt_tokens.labels(*labels).inc(usage.prompt_tokens)
            self.metrics.cached_tokens.labels(*labels).inc(cached or 0)
            self.metrics.completion_tokens.labels(*labels).inc(usage.completion_tokens)
        yield "finish", (usage, finish_reason, calls.calls())


def _chunk(cid: str, model: str, delta: ChoiceDelta, finish: str | None = None) -> ChatCompletionChunk:
    return make_chunk(cid, model, delta, finish)


def _usage_chunk(cid: str, model: str, usage: CompletionUsage | None, attempts: list[Attempt]) -> ChatCompletionChunk:
    usage = usage or CompletionUsage(prompt_tokens=0, completion_tokens=0, total_tokens=0)
    return make_chunk(cid, model, usage=usage, metadata={"attempts": [a.public() for a in attempts]})
