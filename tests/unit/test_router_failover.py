"""The router's failover order, on its own: no model, only fake OpenAI-compatible backends.

Every provider is ``kind: openai``, pointing at tests/fake_backend.py on loopback (or at a
closed port), so building and using the router must never load a model: the store given to
it fails the test if asked for one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

import fake_backend
from cadence.models import ModelStore
from cadence.pipelines.schema import RouterSection
from cadence.router import Router, RouterError
from cadence.router.health import Health
from servers import closed_port, serving

HELLO = [{"role": "user", "content": "Hi Nova, how are you?"}]
FULL = "".join(fake_backend.FULL)


class NoModels(ModelStore):
    """A model store that fails the test if the router asks it for any model."""

    def get(self, key, loader):
        raise AssertionError(f"a model-free router test tried to load a model: {key}")


@pytest.fixture(scope="module")
async def fake_url():
    async with serving(fake_backend.app) as url:
        yield url


@pytest.fixture
async def make_router(fake_url):
    """Build routers over the fake backends; the clock of their cooldowns is ``router.now``."""
    routers: list[Router] = []

    def make(**router_keys) -> Router:
        providers = {
            "dead": {"kind": "openai", "base_url": f"http://127.0.0.1:{closed_port()}/v1"},
            **{mode: {"kind": "openai", "base_url": f"{fake_url}/{mode}/v1"}
               for mode in ("ok", "e500", "e429", "e429ra", "e400", "stall", "slow", "drop", "cut", "flaky")},
            "fleet": {"kind": "openai", "replicas": [f"{fake_url}/r{i}/v1" for i in range(4)]},
        }
        section = RouterSection.model_validate(
            {"providers": providers, "ttft_timeout_s": 2.0, "cooldown_s": 30, **router_keys})
        router = Router(section, NoModels())
        router.now = [1000.0]
        router.health = Health(section.cooldown_s, clock=lambda: router.now[0])
        routers.append(router)
        return router

    yield make
    for router in routers:
        for pool in router._pools.values():  # only the providers a test used
            for backend in pool.backends.values():
                await backend.close()
    fake_backend.failing.clear()


@dataclass
class Reply:
    text: str
    attempts: list[dict]
    calls: list[dict] = field(default_factory=list)  # what the fake backends received meanwhile

    def tried(self) -> list[tuple[str, str, str]]:
        return [(a["provider"], a["model"], a["status"]) for a in self.attempts]


async def ask(router: Router, **params) -> Reply:
    params.setdefault("messages", HELLO)
    before = len(fake_backend.calls)
    text, metadata = "", None
    async for chunk in router.stream(params):
        for choice in chunk.choices:
            text += choice.delta.content or ""
        metadata = getattr(chunk, "metadata", None) or metadata
    assert metadata is not None, "the last chunk carries metadata.attempts"
    return Reply(text, metadata["attempts"], fake_backend.calls[before:])


async def ask_failing(router: Router, **params) -> tuple[RouterError, Reply]:
    params.setdefault("messages", HELLO)
    before = len(fake_backend.calls)
    with pytest.raises(RouterError) as info:
        async for _ in router.stream(params):
            pass
    return info.value, Reply("", [a.public() for a in info.value.attempts], fake_backend.calls[before:])


def url_of(fake_url: str, mode: str) -> str:
    return f"{fake_url}/{mode}/v1"


async def test_remote_providers_load_no_model(make_router):
    router = make_router()
    reply = await ask(router, model="ok/m")
    assert reply.text == FULL and reply.tried() == [("ok", "m", "ok")]
    assert router.models() == []  # nothing served in-process
    assert len(router._store) == 0


async def test_model_first_then_models_in_order(make_router, fake_url):
    router = make_router()
    reply = await ask(router, model="dead/a", models=["e500/b", "e429/c", "ok/d", "e400/never"])
    assert reply.tried() == [("dead", "a", "connection_error"), ("e500", "b", "http_500"),
                             ("e429", "c", "http_429"), ("ok", "d", "ok")]
    assert [a["replica"] for a in reply.attempts[1:]] == [url_of(fake_url, m) for m in ("e500", "e429", "ok")]
    assert all(isinstance(a["latencyMs"], int) and a["latencyMs"] >= 0 for a in reply.attempts)
    # each backend was asked for its own model name, without the provider prefix; e400 never
    assert [(c["mode"], c["model"]) for c in reply.calls] == [("e500", "b"), ("e429", "c"), ("ok", "d")]
    assert reply.text == FULL  # the answer is the one that succeeded, once


async def test_models_from_a_literal_extra_body(make_router):
    router = make_router()
    reply = await ask(router, model="e500/m", extra_body={"models": ["ok/n"]}, max_tokens=5, temperature=0.2,
                      user="alice")
    assert reply.tried() == [("e500", "m", "http_500"), ("ok", "n", "ok")]
    assert reply.text == FULL
    # routing keys stay in the router; sampling params reach the backend
    sent = reply.calls[-1]
    assert (sent["max_tokens"], sent["temperature"]) == (5, 0.2)
    assert not {"models", "extra_body", "user"} & set(sent)


async def test_top_level_models_win_over_extra_body(make_router):
    reply = await ask(make_router(), model="e500/m", models=["ok/top"], extra_body={"models": ["e429/x"]})
    assert reply.tried() == [("e500", "m", "http_500"), ("ok", "top", "ok")]
    assert "e429" not in [c["mode"] for c in reply.calls]


async def test_a_slow_first_token_moves_on(make_router):
    reply = await ask(make_router(ttft_timeout_s=0.3), model="stall/m", models=["ok/m"])
    assert reply.tried() == [("stall", "m", "ttft_timeout"), ("ok", "m", "ok")]
    assert 250 <= reply.attempts[0]["latencyMs"] < 2000
    assert reply.text == FULL


async def test_the_last_model_left_is_waited_for(make_router):
    """A slow first token moves on only while there is somewhere to move to."""
    alone = await ask(make_router(ttft_timeout_s=0.3), model="slow/m")
    assert alone.tried() == [("slow", "m", "ok")] and alone.text == FULL
    assert alone.attempts[0]["latencyMs"] >= 700
    with_fallback = await ask(make_router(ttft_timeout_s=0.3), model="slow/m", models=["ok/m"])
    assert with_fallback.tried() == [("slow", "m", "ttft_timeout"), ("ok", "m", "ok")]


async def test_a_400_is_not_retried(make_router):
    router = make_router()
    error, reply = await ask_failing(router, model="e400/m", models=["ok/m", "e500/m"])
    assert error.status == 400 and "bad field" in str(error)
    assert reply.tried() == [("e400", "m", "http_400")]
    assert [c["mode"] for c in reply.calls] == ["e400"]  # nothing after it was asked
    assert router.health.cooling() == []  # the request's fault: the replica stays in rotation


async def test_all_failing_is_a_503_listing_every_attempt(make_router):
    error, reply = await ask_failing(make_router(), model="e500/m", models=["dead/n"])
    assert error.status == 503
    assert reply.tried() == [("e500", "m", "http_500"), ("dead", "n", "connection_error")]
    assert "e500/m@" in str(error) and "dead/n@" in str(error) and "last error" in str(error)


async def test_a_failed_replica_cools_down_then_is_tried_again(make_router, fake_url):
    router = make_router(cooldown_s=30)
    first = await ask(router, model="e500/m", models=["ok/m"])
    assert first.tried() == [("e500", "m", "http_500"), ("ok", "m", "ok")]
    # the key is provider/replica, the replica being the base URL that attempts report
    assert first.attempts[0]["replica"] == url_of(fake_url, "e500")
    assert router.health.cooling() == [f"e500/{url_of(fake_url, 'e500')}"]

    second = await ask(router, model="e500/m", models=["ok/m"])
    assert second.tried() == [("ok", "m", "ok")]
    assert [c["mode"] for c in second.calls] == ["ok"]  # e500 was not even asked

    router.now[0] += 29
    assert (await ask(router, model="e500/m", models=["ok/m"])).tried() == [("ok", "m", "ok")]
    router.now[0] += 2  # 31 s after the failure: the cooldown is over
    assert router.health.cooling() == []
    third = await ask(router, model="e500/m", models=["ok/m"])
    assert third.tried() == [("e500", "m", "http_500"), ("ok", "m", "ok")]


async def test_a_success_ends_a_cooldown_early(make_router, fake_url):
    router = make_router(cooldown_s=30)
    fake_backend.failing.add("flaky")
    reply = await ask(router, model="flaky/m", models=["ok/m"])
    assert reply.tried() == [("flaky", "m", "http_500"), ("ok", "m", "ok")]
    assert router.health.cooling() == [f"flaky/{url_of(fake_url, 'flaky')}"]
    fake_backend.failing.discard("flaky")
    # still cooling, but the only candidate: tried anyway, and its success clears the cooldown
    assert (await ask(router, model="flaky/m")).tried() == [("flaky", "m", "ok")]
    assert router.health.cooling() == []
    assert (await ask(router, model="flaky/m", models=["ok/m"])).tried() == [("flaky", "m", "ok")]


async def test_a_cooling_replica_of_a_fleet_is_skipped(make_router, fake_url):
    router = make_router(cooldown_s=30)  # sticky: a user keeps their replica
    home = (await ask(router, model="fleet/m", user="alice")).attempts[0]["replica"]
    home_mode = home.removeprefix(f"{fake_url}/").removesuffix("/v1")
    assert (await ask(router, model="fleet/m", user="alice")).attempts[0]["replica"] == home

    fake_backend.failing.add(home_mode)
    failed_over = await ask(router, model="fleet/m", user="alice")
    assert failed_over.tried() == [("fleet", "m", "http_500"), ("fleet", "m", "ok")]
    assert failed_over.attempts[0]["replica"] == home
    spare = failed_over.attempts[1]["replica"]
    assert spare != home and failed_over.text == f"replica {spare.split('/')[-2]} says hi."
    assert router.health.cooling() == [f"fleet/{home}"]

    skipped = await ask(router, model="fleet/m", user="alice")
    assert [(a["replica"], a["status"]) for a in skipped.attempts] == [(spare, "ok")]
    assert home_mode not in [c["mode"] for c in skipped.calls]

    fake_backend.failing.discard(home_mode)
    router.now[0] += 31
    back = await ask(router, model="fleet/m", user="alice")
    assert [(a["replica"], a["status"]) for a in back.attempts] == [(home, "ok")]  # sticky again


async def test_cooling_replicas_are_tried_last_not_never(make_router):
    router = make_router(cooldown_s=30)
    first = await ask(router, model="dead/a", models=["ok/b"])
    assert first.tried() == [("dead", "a", "connection_error"), ("ok", "b", "ok")]
    # dead is cooling: the healthy fallback goes first, dead only after it
    error, second = await ask_failing(router, model="dead/a", models=["e500/c"])
    assert second.tried() == [("e500", "c", "http_500"), ("dead", "a", "connection_error")]
    # everything is cooling now, and is still tried, in the request's order
    error, third = await ask_failing(router, model="dead/a", models=["e500/c"])
    assert third.tried() == [("dead", "a", "connection_error"), ("e500", "c", "http_500")]
    assert error.status == 503


async def test_round_robin_takes_replicas_in_turn(make_router, fake_url):
    router = make_router(routing="round_robin")
    firsts = [(await ask(router, model="fleet/m", user="alice")).attempts[0]["replica"] for _ in range(5)]
    fleet = [url_of(fake_url, f"r{i}") for i in range(4)]
    start = fleet.index(firsts[0])
    assert firsts == [fleet[(start + i) % 4] for i in range(5)]


async def test_bad_requests_fail_before_any_backend_is_asked(make_router):
    router = make_router()
    before = len(fake_backend.calls)
    for params, param, status in [
        ({"model": "gpt-4"}, "model", 400),
        ({"model": "nope/x"}, "model", 404),
        ({"model": "ok/m", "models": "ok/n"}, "models", 400),
        ({"model": "ok/m", "messages": []}, "messages", 400),
        ({"model": "ok/m", "messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role", 400),
    ]:
        with pytest.raises(RouterError) as info:
            router.stream({"messages": HELLO, **params})  # raised at once, not when iterated
        assert (info.value.param, info.value.status) == (param, status), params
    assert len(fake_backend.calls) == before


async def test_an_alias_routes_to_the_served_model_and_replies_name_it(make_router):
    router = make_router(aliases={"deepseek/deepseek-v4-pro": "ok/served", "gpt-4o": "ok/other"})
    chunks = [chunk async for chunk in router.stream({"model": "deepseek/deepseek-v4-pro", "messages": HELLO})]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == FULL
    assert {c.model for c in chunks} == {"ok/served"}  # the truth, not the name asked for
    assert fake_backend.calls[-1]["model"] == "served"
    assert (await ask(router, model="gpt-4o")).tried() == [("ok", "other", "ok")]  # no '/' needed
    assert router.canonical("deepseek/deepseek-v4-pro") == "ok/served"
    with pytest.raises(RouterError) as info:
        router.canonical("anthropic/claude-sonnet-4-6")  # not an alias, no such provider
    assert info.value.status == 404


async def test_an_unknown_fallback_is_skipped_and_reported_not_a_refusal(make_router):
    router = make_router()
    reply = await ask(router, model="ok/m", models=["anthropic/claude-sonnet-4-6", "e500/m"])
    assert reply.tried() == [("ok", "m", "ok"), ("anthropic", "claude-sonnet-4-6", "unknown_model")]
    failed_over = await ask(router, model="e500/m", models=["nope/x", "ok/m"])
    assert failed_over.tried() == [("e500", "m", "http_500"), ("ok", "m", "ok"), ("nope", "x", "unknown_model")]
    error, refused = await ask_failing(router, model="e400/m", models=["nope/x"])
    assert ("nope", "x", "unknown_model") in refused.tried()  # a refusal reports it too
    with pytest.raises(RouterError) as info:  # the primary itself must be served
        router.stream({"model": "nope/x", "messages": HELLO, "models": ["ok/m"]})
    assert info.value.status == 404 and info.value.param == "model"


async def test_a_stream_that_ends_without_a_finish_reason_fails_over_after_what_was_said(make_router):
    router = make_router()
    reply = await ask(router, model="cut/m", models=["ok/m"])
    assert reply.tried() == [("cut", "m", "stream_broken"), ("ok", "m", "ok")]
    assert reply.text == FULL  # the fallback's repeat of "Once upon a time" is not heard twice
    assert reply.calls[-1]["messages"][-1] == {"role": "assistant", "content": "".join(fake_backend.PARTIAL)}
    error, alone = await ask_failing(router, model="cut/m")
    assert alone.tried() == [("cut", "m", "stream_broken")] and error.status == 503
    assert "without a finish_reason" in str(error)


async def test_retry_after_sets_the_cooldown_and_is_passed_on_when_nothing_is_left(make_router, fake_url):
    router = make_router(cooldown_s=30)
    error, first = await ask_failing(router, model="e429ra/m")
    assert first.tried() == [("e429ra", "m", "http_429")]
    assert (error.status, error.retry_after) == (429, 7.0) and "retry after 7s" in str(error)
    # Within its Retry-After the replica is not asked at all, not even as a last resort.
    router.now[0] += 3
    error, second = await ask_failing(router, model="e429ra/m")
    assert second.calls == [] and error.status == 429 and error.retry_after == pytest.approx(4.0)
    fallback = await ask(router, model="e429ra/m", models=["ok/m"])
    assert fallback.tried() == [("ok", "m", "ok")]
    router.now[0] += 4.5  # past the 7 s it asked for (shorter than cooldown_s): asked again
    third = await ask(router, model="e429ra/m", models=["ok/m"])
    assert third.tried() == [("e429ra", "m", "http_429"), ("ok", "m", "ok")]
    # The limit is that model's: another model on the same replica is still asked.
    router.now[0] += 0.5
    assert (await ask_failing(router, model="e429ra/m"))[1].calls == []
    other = await ask(router, model="e429ra/other", models=["ok/m"])
    assert other.tried() == [("e429ra", "other", "http_429"), ("ok", "m", "ok")]
    # A 429 without Retry-After, nothing left: still a 429, with no wait made up.
    error, _ = await ask_failing(router, model="e429/m", models=["e500/m"])
    assert (error.status, error.retry_after) == (429, None)


def test_retry_after_is_read_as_seconds_or_a_date_and_nonsense_is_ignored():
    import email.utils
    import time as clock

    from cadence.router.backends.openai_compat import parse_retry_after

    assert parse_retry_after("7") == 7.0 and parse_retry_after("0") == 0.0
    soon = email.utils.formatdate(clock.time() + 60, usegmt=True)
    assert 55 <= parse_retry_after(soon) <= 61
    assert parse_retry_after(email.utils.formatdate(clock.time() - 60, usegmt=True)) == 0.0
    for nonsense in ("inf", "1e400", "nan", "soon", "", None):
        assert parse_retry_after(nonsense) is None, nonsense
