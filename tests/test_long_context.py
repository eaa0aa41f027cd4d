"""A conversation longer than the model's window keeps being answered: the oldest turns fold
into a rolling summary that rides in the system prompt, and no request overflows."""

from __future__ import annotations

import textwrap

from cadence.config import load_config_text, validate
from cadence.pipelines.builder import PipelineFactory

WINDOW, MAX_TOKENS = 640, 24
CONFIG = textwrap.dedent(f"""
    session: {{instructions: "You are Nova, a warm companion. Answer in one short sentence."}}
    router:
      providers:
        local: {{kind: llamacpp, model: smollm2-135m-instruct, n_ctx: {WINDOW}}}
    pipeline:
      - {{type: context}}
      - {{type: llm, model: local/smollm2-135m-instruct, max_tokens: {MAX_TOKENS}, seed: 7}}
""")
LINES = [
    "My name is Ines and I live in Porto.", "I have a grey cat called Pixel.", "My brother Tiago plays the cello.",
    "I love grilled sardines.", "Next month I am going hiking in the Alps.", "What is a good name for a boat?",
    "Tell me something about the moon.", "I had a long day at work today.", "Do you like rainy weather?",
    "What should I cook tonight?", "I started reading a book about whales.", "Is it hard to learn the guitar?",
    "My favourite colour is green.", "What is your favourite season?", "I want to visit Japan one day.",
    "Can you suggest a short stretching routine?", "I slept badly last night.", "What makes a good friend?",
    "I might adopt a second cat.", "Tell me a tiny story about a lighthouse.",
]


async def test_a_conversation_longer_than_the_window_is_answered_to_the_end(store, monkeypatch):
    from cadence.transports.file import FileConversation

    factory = PipelineFactory(validate(load_config_text(CONFIG)), store)
    factory.prepare()
    router, model = factory.router, "local/smollm2-135m-instruct"
    requests = []
    real = router.stream
    monkeypatch.setattr(router, "stream", lambda params: (requests.append(params), real(params))[1])
    built = []
    real_build = factory.build
    factory.build = lambda *a, **k: built.append(real_build(*a, **k)) or built[-1]

    result = await FileConversation(factory, pace=0).run_text(LINES)

    assert [e.user for e in result.exchanges] == LINES
    assert all(e.reply.strip() for e in result.exchanges), [e.reply for e in result.exchanges]
    replies = [r for r in requests if r.get("max_tokens") == MAX_TOKENS]  # the summariser's have their own
    assert len(replies) == len(LINES)
    sizes = [router.count_tokens(model, r["messages"]) for r in replies]
    assert max(sizes) <= WINDOW - MAX_TOKENS, sizes
    window = built[0].roles.context_window
    await window.summary.settled()
    assert window.folded_messages > 0 and window.summary.folds >= 1 and window.summary.failures == 0
    # once a summary exists it rides in the system prompt, after the persona
    later = [r["messages"][0]["content"] for r in replies[-5:]]
    assert any("What you remember of the conversation so far:" in s for s in later), later
    assert all(s.startswith("You are Nova, a warm companion.") for s in later)
    assert len(built[0].roles.llm_context.get_messages()) < 2 * len(LINES)  # the context did not keep everything
