"""The rule-based fact extractor and a session's memory without a model (SQLite in a temp dir)."""

from __future__ import annotations

import pytest

from cadence.memory.facts import extract_facts
from cadence.memory.summary import RollingSummary
from cadence.memory.user_memory import FACTS_HEADER, MemoryOptions, UserMemory
from cadence.store import MemoryState, make_store


@pytest.mark.parametrize("said, facts", [
    ("Hi! My name is Priya and I have a dog named Rex.",
     [("The user's name is Priya.", "name"), ("The user has a dog named Rex.", None)]),
    ("I'm Priya", [("The user's name is Priya.", "name")]),
    ("Call me Jo.", [("The user's name is Jo.", "name")]),
    ("My favourite food is grilled sardines.", [("The user's favourite food is grilled sardines.", "favorite food")]),
    ("I live in Denver with my husband.", [("The user lives in Denver with their husband.", "home")]),
    ("I work as a nurse.", [("The user works as a nurse.", "job")]),
    ("I am 34 years old.", [("The user is 34 years old.", "age")]),
    ("I'm allergic to peanuts.", [("The user is allergic to peanuts.", None)]),
    ("I study chemistry and I watch a lot of anime.",
     [("The user studies chemistry.", None), ("The user watches a lot of anime.", None)]),
    ("Next month I am going hiking in the Alps.", [("The user is going hiking in the Alps next month.", None)]),
    ("In April I will fly to Japan.", [("The user will fly to Japan in April.", None)]),
    ("I've got two kids.", [("The user has got two kids.", None)]),
    # passing states, questions, chit-chat and promises without a time say nothing lasting
    ("I'm fine, thanks.", []), ("I think so.", []), ("What do you like?", []), ("Tell me a story.", []),
    ("I'll tell you later.", []), ("I'm not sure.", []), ("Do you like my dog?", []),
])
def test_first_person_statements_become_third_person_facts(said, facts):
    assert [(f.text, f.slot) for f in extract_facts(said)] == facts


def memory(store=None, **options) -> UserMemory:
    return UserMemory(RollingSummary(router=None, model=lambda: "m"), store=store, options=MemoryOptions(**options))


async def test_session_only_memory_pins_named_facts_first_within_budget():
    mine = memory(facts_max_tokens=30)
    await mine.attach(None)
    await mine.end_of_turn("I play the cello. My name is Priya. I have a very old grey cat called Pixel.", [])
    assert len(mine.known) == 3 and mine.pinned == []  # pinned only at a fold (a prefix boundary)
    mine.pin()
    assert mine.pinned == ["The user's name is Priya.", "The user plays the cello."]  # the cat is over budget
    assert mine.block().startswith(FACTS_HEADER + "\n- The user's name is Priya.")
    assert await mine.relevant("what's my cat called?") == ["The user has a very old grey cat called Pixel."]
    assert mine.state()["persistent"] is False


async def test_a_returning_user_resumes_within_the_window_and_starts_from_memory_after(tmp_path):
    store = make_store(f"sqlite:///{tmp_path / 'm.db'}")
    await store.open()
    turns = [{"role": "user", "content": "My name is Ana."}, {"role": "assistant", "content": "Hi Ana!"}]
    first = memory(store)
    await first.attach("ana")
    await first.end_of_turn("My name is Ana.", turns)
    assert (await store.load_state("ana")).recent == turns

    again = memory(store, resume_window_s=60)
    assert await again.attach("ana") == turns and again.resumed
    assert again.pinned == ["The user's name is Ana."]

    await store.save_state("ana", MemoryState(summary="Ana likes tea.", recent=turns))
    later = memory(store, resume_window_s=0)
    assert await later.attach("ana") == [] and not later.resumed
    assert later.summary.text == "Ana likes tea." and later.summary.pending == turns  # folded into the summary
    later.summary.cancel()
    await store.close()
