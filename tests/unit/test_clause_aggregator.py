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
