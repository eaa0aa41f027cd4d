"""Fitting a context to the model's window and the rolling summary, with a test-double router."""

from __future__ import annotations

import pytest
from openai.types.chat import ChatCompletionChunk
from openai.types.chat.chat_completion_chunk import Choice, ChoiceDelta
from pipecat.processors.aggregators.llm_context import LLMContext

from cadence.memory import RollingSummary
from cadence.processors.context_window import ContextWindow


class WordRouter:
    """A test double of the router: one token per word, a fixed window, canned summaries."""

    def __init__(self, window: int | None = 100, fail: bool = False):
        self.window, self.fail, self.requests = window, fail, []

    def context_window(self, model: str) -> int | None:
        return 1000 if model == "memory/m" and self.window else self.window  # summaries: a roomier model

    def count_tokens(self, model: str, messages: list[dict]) -> int:
        return sum(len(str(m["content"]).split()) + 2 for m in messages)

    def stream(self, params: dict):
        self.requests.append(params)

        async def chunks():
            if self.fail:
                raise RuntimeError("backend down")
            for word in ("The", " user", " is", " Ines."):
                yield ChatCompletionChunk(id="x", object="chat.completion.chunk", created=0, model="m",
                                          choices=[Choice(index=0, delta=ChoiceDelta(content=word))])

        return chunks()


def conversation(turns: int) -> LLMContext:
    context = LLMContext()
    for n in range(turns):
        context.add_message({"role": "user", "content": f"user turn {n} " + "word " * 6})
        context.add_message({"role": "assistant", "content": f"reply {n} " + "word " * 6})
    context.add_message({"role": "user", "content": "the question now"})
    return context


def window(router: WordRouter) -> ContextWindow:
    return ContextWindow(router, RollingSummary(router, model=lambda: "memory/m"), fold_to=0.5)


async def test_a_context_that_fits_is_left_alone():
    router = WordRouter(window=1000)
    context = conversation(5)
    before = list(context.get_messages())
    assert window(router).fit(context, model="local/m", persona="You are Nova.", max_tokens=20) > 0
    assert context.get_messages() == before and not router.requests


async def test_an_overflowing_context_folds_its_oldest_turns_into_the_summary():
    router = WordRouter(window=100)
    context, fitter = conversation(10), window(router)
    used = fitter.fit(context, model="local/m", persona="You are Nova.", max_tokens=20)
    kept = context.get_messages()
    assert used <= 0.5 * (100 - 20 - 32) + 12  # near fold_to of the budget
    assert kept[0]["role"] == "user" and kept[-1]["content"] == "the question now"
    assert fitter.folded_messages == 21 - len(kept)
    await fitter.summary.settled()
    assert fitter.summary.text == "The user is Ines." and fitter.summary.folds == 1
    summarised = router.requests[0]["messages"][1]["content"]
    assert "user turn 0" in summarised and "the question now" not in summarised
    assert fitter.system_prompt("You are Nova.") == (
        "You are Nova.\n\nWhat you remember of the conversation so far: The user is Ines.")


async def test_the_turn_being_answered_is_never_folded():
    router = WordRouter(window=60)
    context = LLMContext()
    context.add_message({"role": "user", "content": "word " * 200})
    fitter = window(router)
    assert fitter.fit(context, model="local/m", persona="", max_tokens=20) > 60  # too long: the backend refuses
    assert len(context.get_messages()) == 1 and fitter.folded_messages == 0


async def test_a_failed_summary_keeps_the_old_one_and_is_counted():
    router = WordRouter(window=100, fail=True)
    fitter = window(router)
    fitter.summary.text = "The user has a cat."
    fitter.fit(conversation(10), model="local/m", persona="", max_tokens=20)
    await fitter.summary.settled()
    assert fitter.summary.failures == 1 and fitter.summary.text == "The user has a cat."


async def test_an_unknown_window_is_not_fitted():
    router = WordRouter(window=None)
    context = conversation(50)
    assert window(router).fit(context, model="remote/m", persona="", max_tokens=20) is None
    assert len(context.get_messages()) == 101


@pytest.mark.parametrize("pending", [10, 1000])
async def test_turns_waiting_for_the_summariser_are_bounded(pending):
    summary = RollingSummary(WordRouter(), model=lambda: "m")
    summary._task = type("Busy", (), {"done": lambda self: False})()  # a summary is being made
    summary.fold([{"role": "user", "content": str(n)} for n in range(pending)])
    assert len(summary._pending) == min(pending, RollingSummary.MAX_PENDING)


async def test_between_turns_a_full_context_folds_ahead_of_need_and_its_prefix_is_warmed():
    router = WordRouter(window=120)
    warmed = []
    router.warm = lambda model, messages, user=None: warmed.append((model, messages, user)) or 0
    fitter = ContextWindow(router, RollingSummary(router, model=lambda: "memory/m"), fold_to=0.5, user="u1")
    context = LLMContext()
    context.add_message({"role": "user", "content": "hello " * 5})
    fitter.fit(context, model="local/m", persona="You are Nova.", max_tokens=20)  # remembers the request
    await fitter.between_turns()
    assert fitter.folded_messages == 0 and not warmed  # far from full: nothing to do
    for n in range(8):
        context.add_message({"role": "assistant" if n % 2 else "user", "content": f"turn {n} " + "word " * 8})
    await fitter.between_turns()  # past the high-water mark, though a request would still fit
    assert fitter.folded_messages > 0 and warmed and warmed[0][2] == "u1"
    assert warmed[0][1][0]["role"] == "system" and warmed[0][1][1:] == [
        {"role": m["role"], "content": m["content"]} for m in context.get_messages()]
    await fitter.summary.settled()  # the summary landed: the prefix that now carries it is warmed too
    assert len(warmed) == 2 and "The user is Ines." in warmed[1][1][0]["content"]


async def test_a_summary_request_is_fitted_to_the_summary_model_window():
    router = WordRouter(window=120)  # the summary model has the same small window here
    summary = RollingSummary(router, model=lambda: "local/m", max_tokens=20)
    summary.fold([{"role": "user" if n % 2 else "assistant", "content": "word " * 10} for n in range(12)])
    await summary.settled()
    assert summary.folds > 1 and not summary._pending  # several requests, all of the turns summarised
    assert all(router.count_tokens("local/m", r["messages"]) <= 120 - 20 for r in router.requests)


async def test_system_messages_are_not_folded_and_an_unknown_window_still_bounds_the_context():
    router = WordRouter(window=100)
    context = conversation(10)
    context.get_messages().insert(2, {"role": "system", "content": "client note"})
    fitter = window(router)
    fitter.fit(context, model="local/m", persona="", max_tokens=20)
    assert context.get_messages()[0] == {"role": "system", "content": "client note"}
    unknown = WordRouter(window=None)
    big = conversation(300)
    window(unknown).fit(big, model="remote/m", persona="", max_tokens=20)
    assert len(big.get_messages()) <= 400


async def test_a_turn_too_long_for_a_summary_request_is_shortened_not_retried_forever():
    router = WordRouter(window=100)
    summary = RollingSummary(router, model=lambda: "memory/m", max_tokens=50)
    huge = {"role": "user", "content": "start " + "blah " * 3000 + "end"}  # > the summary model's 1000
    summary.fold([huge, {"role": "assistant", "content": "ok"}])
    await summary.settled()
    summary.fold([{"role": "user", "content": "my cat is called Tom"}])
    await summary.settled()
    assert summary.failures == 0 and summary.folds >= 2 and not summary.pending
    sent = [r["messages"][-1]["content"] for r in router.requests]
    assert all(router.count_tokens("memory/m", r["messages"]) <= 1000 - 50 - 64 for r in router.requests)
    assert "start" in sent[0] and "end" in sent[0] and "…" in sent[0]
    assert "Tom" in sent[-1]
