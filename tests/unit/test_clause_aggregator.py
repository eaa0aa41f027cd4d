"""The TTS aggregator that lets a reply's first clause go ahead alone."""

from __future__ import annotations

from cadence.processors.clause_aggregator import FirstClauseAggregator


async def pieces(aggregator: FirstClauseAggregator, tokens: list[str]) -> list[str]:
    out = []
    for token in tokens:
        out += [a.text async for a in aggregator.aggregate(token)]
    rest = await aggregator.flush()
    return out + ([rest.text] if rest and rest.text else [])


REPLY = ["Oh", ",", " I", " really", " love", " the", " sea", ",", " and", " the", " stars", ".", " What",
         " about", " you", ",", " my", " friend", "?"]


async def test_the_first_clause_goes_alone_then_whole_sentences():
    got = await pieces(FirstClauseAggregator(min_words=3), REPLY)
    assert got == ["Oh, I really love the sea,", "and the stars.", "What about you, my friend?"]


async def test_a_short_opening_waits_for_enough_words():
    got = await pieces(FirstClauseAggregator(min_words=8), REPLY)
    assert got == ["Oh, I really love the sea, and the stars.", "What about you, my friend?"]


async def test_zero_words_means_sentences_only():
    got = await pieces(FirstClauseAggregator(min_words=0), REPLY)
    assert got == ["Oh, I really love the sea, and the stars.", "What about you, my friend?"]


async def test_each_reply_gets_its_own_first_clause():
    aggregator = FirstClauseAggregator(min_words=2)
    first = await pieces(aggregator, ["Well", " then", ",", " fine", ".", " Yes", ",", " ok", "."])
    second = await pieces(aggregator, ["Sure", " thing", ",", " friend", "."])
    assert first == ["Well then,", "fine.", "Yes, ok."] and second == ["Sure thing,", "friend."]
    aggregator = FirstClauseAggregator(min_words=2)
    _ = [a async for a in aggregator.aggregate("Cut off here")]
    await aggregator.handle_interruption()
    assert await pieces(aggregator, ["After", " that", ",", " more", "."]) == ["After that,", "more."]


def tokens_of(text: str) -> list[str]:
    words = text.split(" ")
    return [words[0]] + [" " + w for w in words[1:]]


async def test_a_long_first_sentence_goes_ahead_at_a_phrase():
    text = "The city of Paris has a wide range of museums and art galleries. It is lovely."
    got = await pieces(FirstClauseAggregator(min_words=3, phrase_words=5), tokens_of(text))
    assert got == ["The city of Paris has a wide range", "of museums and art galleries.", "It is lovely."]


async def test_no_phrase_word_cuts_at_twice_the_words():
    text = "Big red dogs run fast past green old barns daily now. Yes."
    got = await pieces(FirstClauseAggregator(min_words=3, phrase_words=4), tokens_of(text))
    assert got == ["Big red dogs run fast past green old barns", "daily now.", "Yes."]


async def test_a_short_first_sentence_is_not_cut():
    got = await pieces(FirstClauseAggregator(min_words=3, phrase_words=5), tokens_of("I like the sea of course. Do you?"))
    assert got == ["I like the sea of course.", "Do you?"]
