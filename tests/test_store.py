"""The store's contract, run the same against SQLite and a real PostgreSQL server."""

from __future__ import annotations

import pytest

from cadence.store import MemoryState, make_store
from cadence.store.base import MAX_FACTS_PER_USER, MAX_RECENT_MESSAGES
from cadence.store.migrations import POSTGRESQL, SQLITE


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request, tmp_path):
    if request.param == "sqlite":
        store = make_store(f"sqlite:///{tmp_path / 'memory.db'}")
    else:
        url = request.getfixturevalue("postgres_url")
        store = make_store(url)
    await store.open()
    if request.param == "postgresql":  # one server for all tests: start each from nothing
        for user in ("ana", "bo"):
            await store.forget(user)
    yield store
    await store.close()


async def test_migrations_are_applied_once_and_recorded(store):
    expected = len(POSTGRESQL if "postgresql" in store.url else SQLITE)
    assert await store.schema_version() == expected
    await store.open()  # a second process (or a restart) applies nothing twice
    assert await store.schema_version() == expected


async def test_facts_are_kept_per_user_and_searchable(store):
    dog = await store.add_fact("ana", "The user has a dog named Rex.")
    await store.add_fact("ana", "The user's favorite food is ramen.", slot="favorite food")
    await store.add_fact("bo", "The user has a dog named Fido.")
    assert [f.text for f in await store.facts("ana")] == ["The user has a dog named Rex.",
                                                          "The user's favorite food is ramen."]
    found = await store.search_facts("ana", "what's my dog called?")
    assert [f.id for f in found] == [dog.id]  # never another user's dog
    assert [f.text for f in await store.search_facts("ana", "What food do I like?")] == \
        ["The user's favorite food is ramen."]
    assert await store.search_facts("ana", "the and of") == []  # nothing worth searching


async def test_a_slot_replaces_and_the_same_text_is_only_confirmed(store):
    first = await store.add_fact("ana", "The user's name is Ana.", slot="name")
    again = await store.add_fact("ana", "The user's name is Ana.", slot="name")
    renamed = await store.add_fact("ana", "The user's name is Anabel.", slot="name")
    assert first.id == again.id == renamed.id
    assert [f.text for f in await store.facts("ana")] == ["The user's name is Anabel."]
    same = await store.add_fact("ana", "The user plays chess.")
    assert (await store.add_fact("ana", "The user plays chess.")).id == same.id
    assert len(await store.facts("ana")) == 2
    assert [f.text for f in await store.search_facts("ana", "Anabel")] == ["The user's name is Anabel."]


async def test_forgetting_is_real_deletion(store):
    fact = await store.add_fact("ana", "The user is allergic to peanuts.")
    await store.add_fact("ana", "The user lives in Denver.", slot="home")
    await store.save_state("ana", MemoryState(summary="They talked about peanuts.", recent=[{"role": "user", "content": "hi"}]))
    assert await store.delete_fact("ana", fact.id)
    assert not await store.delete_fact("ana", fact.id)
    assert await store.search_facts("ana", "peanuts allergic") == []
    assert not await store.delete_fact("bo", (await store.facts("ana"))[0].id)  # not bo's to delete
    assert await store.forget("ana")
    assert await store.facts("ana") == [] and await store.load_state("ana") is None
    assert await store.search_facts("ana", "Denver") == []
    assert not await store.forget("ana")


async def test_memory_state_round_trips_and_is_bounded(store):
    assert await store.load_state("ana") is None
    recent = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i} — ünïcode"} for i in range(300)]
    await store.save_state("ana", MemoryState(summary="The user likes tea.", recent=recent))
    state = await store.load_state("ana")
    assert state.summary == "The user likes tea."
    assert state.recent == recent[-MAX_RECENT_MESSAGES:]
    assert state.updated_at > 0
    await store.save_state("ana", MemoryState(summary="The user likes coffee now.", recent=[]))
    assert (await store.load_state("ana")).summary == "The user likes coffee now."


async def test_facts_per_user_are_bounded(store):
    for i in range(MAX_FACTS_PER_USER + 5):
        await store.add_fact("bo", f"The user knows fact number {i}.")
    facts = await store.facts("bo")
    assert len(facts) == MAX_FACTS_PER_USER
    assert facts[0].text == "The user knows fact number 5."  # the least recently confirmed went
