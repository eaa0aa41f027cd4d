"""The text end-of-turn score on the packaged model: fragments Whisper closes with a "."
read unfinished, finished sentences read finished (the cases that cut speakers off)."""

from __future__ import annotations

from cadence.processors.text_turn import shared_scorer
from cadence.processors.turn_decision import form_adjusted, text_confidence

FRAGMENTS = ["I went to the market and bought.", "If it rains this weekend.", "Can you tell me?",
             "Tell me about the.", "When I was a kid, I used to.", "I think that the problem is that."]
SENTENCES = ["What did you do today?", "I went to the market and bought apples.", "I love autumn.",
             "Tell me about the moon.", "Do you like music?", "Good evening Nova.", "Thanks, that was great."]


def test_fragments_read_unfinished_and_sentences_finished(store):
    scorer = shared_scorer(store, "qwen2.5-coder-0.5b-instruct")
    fragments = {t: text_confidence(form_adjusted(t, scorer.score(t))) for t in FRAGMENTS}
    sentences = {t: text_confidence(form_adjusted(t, scorer.score(t))) for t in SENTENCES}
    assert max(fragments.values()) < 0.25, fragments
    assert min(sentences.values()) > 0.5, sentences
    # Whisper's closing mark is not read, spaced or not (two segments joined can leave "autumn .").
    assert scorer.score("I love autumn .") == scorer.score("I love autumn?") == scorer.score("I love autumn")
    assert scorer.score("?") == 0.0
