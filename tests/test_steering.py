"""Steering tags: parsed across token boundaries, performed by Piper, never spoken.

The audio is real Piper speech and is checked by transcribing it with real Whisper.
"""

from __future__ import annotations

import numpy as np
import pytest

from cadence.voice.delivery import Delivery
from cadence.voice.tags import TagParser, strip_tags
from conftest import words

TAG_WORDS = {"whispering", "whisper", "sigh", "sighs", "laughing", "laugh", "say", "quiet", "intensity", "bracket"}
TAGGED = "[say with quiet intensity] I have missed you. [whispering] Come closer. [sigh] It was a long day. " \
         "[laughing] You always make me smile."


def _rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float64)
    voiced = samples[np.abs(samples) > 200]  # pauses and silence do not count
    return float(np.sqrt(np.mean(voiced ** 2))) if voiced.size else 0.0


def test_tags_split_across_tokens_are_found_and_no_bracket_survives():
    parser = TagParser()
    pieces = ["[say with qu", "iet intensity] I know", ". [whis", "pering] It's late [si", "gh] and [bo", "gus] we",
              " [laughing] rest] now [unfinished"]
    segments = [s for piece in pieces for s in parser.feed(piece)] + parser.end()
    text = "".join(s.text for s in segments if s.tag is None)
    tags = [(s.tag.kind, s.tag.name) for s in segments if s.tag is not None]
    assert tags == [("steering", "say with quiet intensity"), ("delivery", "whispering"), ("nonverbal", "sigh"),
                    ("unknown", "bogus"), ("delivery", "laughing")]
    assert "[" not in text and "]" not in text and "unfinished" not in text
    assert strip_tags("[sigh] I know [happy] it is, [x] fine.")[0] == "I know it is, fine."
    assert strip_tags("[Clear Throat] Well.")[1][0].name == "clear_throat"  # any case, spaces for underscores
    assert strip_tags("[say [whispering] softly] hi")[0] == "hi"  # a nested bracket goes whole
    assert strip_tags("[whispering\nHello")[0] == "Hello"  # a known tag cut short by a line break
    assert strip_tags("[the long road\nHome")[0] == "the long road\nHome"  # no tag: the words stay


def test_a_bracket_left_open_at_the_reply_end_keeps_real_words_and_drops_tag_words():
    assert strip_tags("Fine. [whispering come closer now")[0] == "Fine. come closer now"  # a tag, then words
    assert strip_tags("Fine. [whispering come closer now")[1][0].name == "whispering"
    assert strip_tags("Fine. [say it softly")[0] == "Fine."  # a steering line being written: it goes
    long = "Fine. [and then we walked along the harbour until the lamps came on"
    assert strip_tags(long)[0] == "Fine. and then we walked along the harbour until the lamps came on"


@pytest.fixture(scope="module")
def speak(store):
    """The speech routes' own path (SpeechService.pcm) on the packaged voice: text → PCM at 22.05 kHz."""
    import asyncio

    from cadence.voice.catalog import VoiceCatalog
    from cadence.voice.speech import SpeechRequest, SpeechService

    service = SpeechService(VoiceCatalog("en_US-joe-medium"), store.piper_voice)

    def run(text: str, mode: str | None = None) -> bytes:
        async def collect() -> bytes:
            return b"".join([p async for p in service.pcm(SpeechRequest(text, service.catalog.default, mode))])
        return asyncio.run(collect())

    return run


def test_a_tagged_reply_is_spoken_without_any_tag_word(speak, transcribe):
    heard = set(words(transcribe(np.frombuffer(speak(TAGGED), dtype=np.int16), 22050)))
    assert heard & {"missed", "closer", "long", "day", "smile"}, heard  # the words are there
    assert not heard & TAG_WORDS, heard & TAG_WORDS


def test_whispering_is_quieter_than_the_same_words_unsteered(speak):
    plain = speak("Come closer, I will tell you a secret.")
    whispered = speak("[whispering] Come closer, I will tell you a secret.")
    assert _rms(whispered) < 0.6 * _rms(plain), (_rms(whispered), _rms(plain))


def test_delivery_mode_changes_the_audio_measurably(speak):
    # Sentences longer than the phrase cache keeps (48 characters), so each run is synthesized anew.
    text = ("I am so terribly sorry, that is truly awful and heartbreaking news to hear. I really wish there was"
            " some way I could help you today. It hurts so much to lose a dear friend after all those years"
            " together. I miss her so much and I cry every single night now.")

    def seconds(mode: str) -> float:  # the sad lines are slowed (and paused) more the livelier the mode
        return float(np.median([len(speak(text, mode)) / 2 / 22050 for _ in range(3)]))

    stable, creative = seconds("STABLE"), seconds("CREATIVE")
    assert creative > 1.04 * stable, (stable, creative)  # measured: 1.07 (runs 1.06-1.09)


def test_a_sad_sentence_is_read_slower_and_softer_than_a_glad_one_by_sentiment():
    delivery = Delivery()
    sad, glad = delivery.plan("I am so sorry, that is terrible news."), delivery.plan("That is wonderful, I love it!")
    assert sad.prosody.speed < 1.0 < glad.prosody.speed and sad.prosody.volume < glad.prosody.volume
    assert Delivery("STABLE").plan("I am so sorry, that is terrible news.").prosody.speed > sad.prosody.speed
    assert Delivery(use_sentiment=False).plan("I am so sorry, that is terrible news.").prosody.speed == 1.0


async def test_a_realtime_reply_with_tags_speaks_and_shows_no_tag(store, transcribe):
    """Over the Realtime WebSocket, with the LLM streaming tags split across tokens (the
    loopback backend double's ``/tags``): the transcript and the audio hold the words only."""
    import json

    import fake_backend
    from cadence.config import load_config_text, validate
    from cadence.pipelines.builder import PipelineFactory
    from cadence.server import create_app
    from servers import serving
    from ws_reply import open_session, spoken_reply, update_session

    async with serving(fake_backend.app) as url:
        config = {"router": {"providers": {"fake": {"kind": "openai", "base_url": f"{url}/tags/v1"}}},
                  "pipeline": [{"type": "context"}, {"type": "llm", "model": "fake/m"}, {"type": "tts"}]}
        factory = PipelineFactory(validate(load_config_text(json.dumps(config))), store)
        app = create_app(factory)
        async with serving(app) as base:
            async with open_session(base) as ws:
                updated = await update_session(ws, {"providerData": {"tts": {"deliveryMode": "CREATIVE"}}})
                assert updated["type"] == "session.updated" and "tts" not in updated["session"]["providerData"][
                    "unsupported"], updated
                assert updated["session"]["providerData"]["tts"] == {"deliveryMode": "CREATIVE"}
                audio, text, done = await spoken_reply(ws)
                (session,) = app.state.realtime_sessions  # the mode reached the voice, not only the echo
                assert session.pipeline.roles.tts.delivery.mode == "CREATIVE"
    assert "[" not in text and "]" not in text and not set(words(text)) & TAG_WORDS, text
    assert set(words(text)) >= {"missed", "closer", "long", "day", "smile"}, text
    spoken = done["output"][0]["content"][0]["transcript"]
    assert "[" not in spoken and not set(words(spoken)) & TAG_WORDS, spoken
    heard = set(words(transcribe(np.frombuffer(bytes(audio), dtype=np.int16), 24000)))
    assert heard & {"missed", "closer", "long", "day", "smile"} and not heard & TAG_WORDS, heard


async def test_delivery_asked_of_a_pipeline_without_the_steered_voice_is_refused_by_name(store):
    """A text-only pipeline cannot perform providerData.tts: an error naming it, and the session goes on."""
    import asyncio
    import json

    import websockets

    import fake_backend
    from cadence.config import load_config_text, validate
    from cadence.pipelines.builder import PipelineFactory
    from cadence.server import create_app
    from servers import serving

    async with serving(fake_backend.app) as url:
        config = {"router": {"providers": {"fake": {"kind": "openai", "base_url": f"{url}/ok/v1"}}},
                  "pipeline": [{"type": "context"}, {"type": "llm", "model": "fake/m"}]}
        factory = PipelineFactory(validate(load_config_text(json.dumps(config))), store)
        async with serving(create_app(factory)) as base:
            async with websockets.connect(base.replace("http://", "ws://") + "/v1/realtime") as ws:
                for _ in range(2):
                    await ws.recv()
                for event, param in (
                        ({"type": "session.update", "session": {"type": "realtime", "providerData": {
                            "tts": {"deliveryMode": "CREATIVE"}}}}, "session.providerData.tts"),
                        ({"type": "response.create", "response": {"providerData": {
                            "tts": {"steering": "softly"}}}}, "response.providerData.tts")):
                    await ws.send(json.dumps(event))
                    error = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    assert error["type"] == "error" and error["error"]["param"] == param, error
                    assert "tts stage" in error["error"]["message"]
                await ws.send(json.dumps({"type": "response.create"}))
                while (event := json.loads(await asyncio.wait_for(ws.recv(), 30)))["type"] != "response.done":
                    assert event["type"] != "error", event
                assert event["response"]["status"] == "completed"


async def test_a_plugin_tts_engine_gets_the_words_without_tags(store, monkeypatch):
    """A TTS from the user's own code (a module:Class stage) is steered like the built-in one:
    the tags never reach it, nor the transcript."""
    import json
    from pathlib import Path

    import fake_backend
    from cadence.config import load_config_text, validate
    from cadence.pipelines.builder import PipelineFactory
    from cadence.server import create_app
    from servers import serving
    from ws_reply import open_session, spoken_reply, update_session

    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    from custom_stage import RecordingTTS

    RecordingTTS.heard.clear()
    async with serving(fake_backend.app) as url:
        config = {"router": {"providers": {"fake": {"kind": "openai", "base_url": f"{url}/tags/v1"}}},
                  "pipeline": [{"type": "context"}, {"type": "llm", "model": "fake/m"},
                               {"type": "custom_stage:RecordingTTS"}]}
        factory = PipelineFactory(validate(load_config_text(json.dumps(config))), store)
        async with serving(create_app(factory)) as base:
            async with open_session(base) as ws:
                assert (await update_session(ws, {}))["type"] == "session.updated"
                _, transcript, done = await spoken_reply(ws)
    spoken = " ".join(RecordingTTS.heard)
    assert set(words(spoken)) >= {"missed", "closer", "smile"}, spoken
    assert "[" not in spoken and not set(words(spoken)) & TAG_WORDS, spoken
    assert "[" not in transcript and not set(words(transcript)) & TAG_WORDS, transcript
    assert done["status"] == "completed"
