"""A spoken round trip through the real embedded stack (Silero, smart-turn, Whisper, SmolLM2, Piper)."""

from __future__ import annotations

import numpy as np

from cadence.transports.file import FileConversation
from conftest import word_error_rate, words

JUNK = ("<|", "|>", "im_end", "im_start", "</s>")


def assert_clean_reply(reply: str) -> None:
    assert words(reply), "the LLM gave an empty reply"
    assert not any(token in reply for token in JUNK), f"template junk in reply: {reply!r}"


async def test_spoken_question_gets_a_spoken_reply(nova_factory, speak, transcribe):
    question = "What is the capital of France?"
    audio = speak(question)
    result = await FileConversation(nova_factory).run_audio(audio)

    assert len(result.exchanges) == 1, result.exchanges
    exchange = result.exchanges[0]
    assert word_error_rate(question, exchange.user) <= 0.2, exchange.user
    assert_clean_reply(exchange.reply)

    reply_audio = np.frombuffer(result.audio, dtype=np.int16)
    assert len(reply_audio) / result.sample_rate > 0.5, "reply audio is too short"
    rms = float(np.sqrt(np.mean(reply_audio.astype(np.float64) ** 2)))
    assert rms > 300, f"reply audio is (nearly) silent: rms={rms:.0f}"
    heard = transcribe(reply_audio, result.sample_rate)
    assert word_error_rate(exchange.reply, heard) <= 0.5, (exchange.reply, heard)

    timing = result.timings[0].stage_latencies()
    assert {"turn_decision", "stt", "llm_first_token", "tts_first_audio", "voice_to_voice"} <= set(timing)
    assert 0 < timing["voice_to_voice"] < 10


async def test_a_wav_with_two_questions_gives_two_turns(nova_factory, speak):
    gap = np.zeros(int(16000 * 1.5), dtype=np.int16)
    audio = np.concatenate([speak("My name is Alice."), gap, speak("What is my name?")])
    result = await FileConversation(nova_factory).run_audio(audio)

    assert [round(word_error_rate(q, e.user), 1) <= 0.2 for q, e in
            zip(["My name is Alice.", "What is my name?"], result.exchanges)] == [True, True], result.exchanges
    for exchange in result.exchanges:
        assert_clean_reply(exchange.reply)


async def test_a_name_a_pause_and_a_question_are_one_turn(nova_factory, speak):
    # "Nova," then the pause a comma makes (0.8 s of silence), then the question: smart-turn
    # alone ends the turn at "Nova"; the words heard so far hold it open.
    pause = np.zeros(int(16000 * 0.8), dtype=np.int16)
    audio = np.concatenate([speak("Nova,"), pause, speak("what is the capital of France?")])
    result = await FileConversation(nova_factory).run_audio(audio)
    assert len(result.exchanges) == 1, result.exchanges
    assert word_error_rate("Nova, what is the capital of France?", result.exchanges[0].user) <= 0.3, result.exchanges
    assert_clean_reply(result.exchanges[0].reply)


async def test_two_sentences_in_a_row_are_one_turn(nova_factory, speak):
    # The first sentence sounds and reads finished, so its turn ends; the second comes before
    # any of the reply was heard, so the turn resumes: one user turn, one reply.
    gap = np.zeros(int(16000 * 0.35), dtype=np.int16)
    audio = np.concatenate([speak("Good evening Nova."), gap, speak("What did you do today?")])
    result = await FileConversation(nova_factory).run_audio(audio)
    assert len(result.exchanges) == 1, result.exchanges
    assert word_error_rate("Good evening Nova. What did you do today?", result.exchanges[0].user) <= 0.3
    assert_clean_reply(result.exchanges[0].reply)


async def test_every_question_of_a_wav_is_answered_in_order(nova_factory, speak):
    questions = ["What is the capital of France?", "Do you like music?", "Tell me about the moon."]
    gap = np.zeros(16000 * 3, dtype=np.int16)  # past any reply's start: each question is its own turn
    audio = np.concatenate([part for q in questions for part in (speak(q), gap)])
    result = await FileConversation(nova_factory).run_audio(audio)
    assert [word_error_rate(q, e.user) <= 0.2 for q, e in zip(questions, result.exchanges)] == [True] * 3, \
        result.exchanges
    assert len(result.exchanges) == 3 and all(e.reply and not e.interrupted for e in result.exchanges)


async def test_typed_turns_each_get_a_reply(nova_factory):
    result = await FileConversation(nova_factory).run_text(["Hello Nova!", "What did I just say to you?"])
    assert [e.user for e in result.exchanges] == ["Hello Nova!", "What did I just say to you?"]
    for exchange in result.exchanges:
        assert_clean_reply(exchange.reply)
    assert len(result.audio) > 0


async def test_the_voice_keeps_talking_when_the_primary_llm_is_down(tmp_path, store):
    from cadence.config import load_and_validate
    from cadence.pipelines.builder import PipelineFactory
    from conftest import NOVA
    from servers import closed_port

    text = NOVA.read_text().replace(
        "router:\n  providers:\n",
        f"router:\n  providers:\n    dead: {{kind: openai, base_url: 'http://127.0.0.1:{closed_port()}/v1'}}\n",
    ).replace("model: local/qwen2.5-coder-0.5b-instruct\n", "model: dead/big-model\n    fallbacks: [local/qwen2.5-coder-0.5b-instruct]\n")
    path = tmp_path / "nova.yaml"
    path.write_text(text)
    result = await FileConversation(PipelineFactory(load_and_validate(str(path)), store)).run_text(["Hello there!"])
    assert_clean_reply(result.exchanges[0].reply)
    assert len(result.audio) > 0


async def test_each_turn_extends_the_previous_prompt_unchanged(nova_factory, monkeypatch):
    """Prefix-stable prompts: a turn's request starts with the previous request's messages."""
    requests = []
    real_stream = nova_factory.router.stream

    def spy(params):
        requests.append([dict(m) for m in params["messages"]])
        return real_stream(params)

    monkeypatch.setattr(nova_factory.router, "stream", spy)
    await FileConversation(nova_factory).run_text(["Hi!", "My cat is called Comet.", "What is my cat called?"])
    assert len(requests) == 3
    assert requests[0][0]["role"] == "system" and "Nova" in requests[0][0]["content"]
    for previous, current in zip(requests, requests[1:]):
        assert current[: len(previous)] == previous
        assert current[len(previous)]["role"] == "assistant"
