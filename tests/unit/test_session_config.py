"""The typed Realtime session: YAML defaults, session.update merging, turn settings (no models)."""

from __future__ import annotations

import textwrap

import pytest

from cadence.config import load_config_text, validate
from cadence.transports.realtime.protocol import ProtocolError, normalize_session
from cadence.transports.realtime.session_config import SessionConfig, SessionDefaults

TUNED = textwrap.dedent("""
    session: {instructions: "You are Vera.", greeting: "Hello there!"}
    pipeline:
      - {type: vad, confidence: 0.62, stop_secs: 0.35}
      - {type: turn, threshold: 0.8, stop_secs: 1.7, interruptions: false}
      - {type: stt, prompt: "Vera, Nova"}
      - {type: context}
      - {type: llm, max_tokens: 42}
      - {type: tts, speed: 1.2}
""")


@pytest.fixture
def defaults() -> SessionDefaults:
    return SessionDefaults.from_config(validate(load_config_text(TUNED)))


def test_defaults_come_from_the_yaml(defaults):
    assert (defaults.vad_confidence, defaults.vad_stop_secs) == (0.62, 0.35)
    assert (defaults.turn_threshold, defaults.max_wait_secs, defaults.interruptions) == (0.8, 1.7, False)
    assert (defaults.max_tokens, defaults.speed, defaults.greeting) == (42, 1.2, "Hello there!")
    assert defaults.transcription_prompt == "Vera, Nova" and defaults.voices == ("en_US-joe-medium",)


def test_a_new_session_shows_the_yaml_values(defaults):
    wire = SessionConfig.initial(defaults).wire()
    detection = wire["audio"]["input"]["turn_detection"]
    assert detection["type"] == "server_vad"
    assert detection["threshold"] == 0.62 and detection["silence_duration_ms"] == 350
    assert detection["endOfTurnConfidenceThreshold"] == 0.8 and detection["maxEndOfTurnSilenceMs"] == 1700
    assert detection["interrupt_response"] is False and detection["create_response"] is True
    assert wire["max_output_tokens"] == 42 and wire["audio"]["output"]["speed"] == 1.2
    assert wire["instructions"] == "You are Vera." and wire["audio"]["input"]["transcription"]["prompt"] == "Vera, Nova"


def test_turn_settings_of_an_untouched_session_are_the_yaml_values(defaults):
    turn = SessionConfig.initial(defaults).turn_settings(defaults)
    assert (turn.vad_confidence, turn.vad_stop_secs, turn.end_of_turn_threshold) == (0.62, 0.35, 0.8)
    assert (turn.max_wait_secs, turn.interrupt_response, turn.create_response) == (1.7, False, True)
    assert turn.mode == "server_vad" and turn.idle_timeout_ms is None


def test_a_pipeline_without_vad_has_no_turn_detection():
    defaults = SessionDefaults.from_config(validate(load_config_text("pipeline: [{type: context}, {type: llm}]")))
    config = SessionConfig.initial(defaults)
    assert config.audio.input.turn_detection is None and config.turn_settings(defaults).mode is None
    assert config.voice is None


def test_update_replaces_sub_objects_and_fills_what_the_client_left_out(defaults):
    config = SessionConfig.initial(defaults).merge(
        {"audio": {"input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 300}}}}, defaults)
    detection = config.wire()["audio"]["input"]["turn_detection"]
    assert detection["silence_duration_ms"] == 300
    assert detection["threshold"] == 0.62 and detection["interrupt_response"] is False  # the YAML's, not OpenAI's
    assert config.turn_settings(defaults).vad_stop_secs == 0.3


def test_semantic_vad_eagerness_sets_threshold_and_longest_wait(defaults):
    config = SessionConfig.initial(defaults).merge(
        {"audio": {"input": {"turn_detection": {"type": "semantic_vad", "eagerness": "high"}}}}, defaults)
    turn = config.turn_settings(defaults)
    assert (turn.end_of_turn_threshold, turn.max_wait_secs) == (0.3, 2.0)
    assert "threshold" not in config.wire()["audio"]["input"]["turn_detection"]  # a server_vad field


def test_inworld_fields_in_provider_data_win_and_merge(defaults):
    config = SessionConfig.initial(defaults)
    config = config.merge({"providerData": {"stt": {"vadThreshold": 0.4, "endOfTurnConfidenceThreshold": 0.2}}},
                          defaults)
    config = config.merge({"providerData": {"stt": {"inactivityTimeoutSeconds": 9,
                                                    "minEndOfTurnSilenceWhenConfident": 150}}}, defaults)
    assert config.providerData["stt"] == {"vadThreshold": 0.4, "endOfTurnConfidenceThreshold": 0.2,
                                          "inactivityTimeoutSeconds": 9, "minEndOfTurnSilenceWhenConfident": 150}
    turn = config.turn_settings(defaults)
    assert (turn.vad_confidence, turn.end_of_turn_threshold) == (0.4, 0.2)
    assert (turn.idle_timeout_ms, turn.vad_stop_secs) == (9000, 0.15)


def test_features_not_built_yet_are_listed_as_unsupported(defaults):
    config = SessionConfig.initial(defaults).merge({"providerData": {"memory": {"auto_summarize": True},
                                                                     "tts": {"deliveryMode": "STABLE"},
                                                                     "backchannel": {"small_model": "x",
                                                                                     "min_gap_ms": 2000}}}, defaults)
    assert config.providerData["unsupported"] == ["backchannel.small_model"]  # tts is built (steered delivery)
    assert config.providerData["tts"] == {"deliveryMode": "STABLE"}


def test_provider_data_tts_is_checked_naming_the_field(defaults):
    for bad, param in [({"deliveryMode": "WILD"}, "session.providerData.tts.deliveryMode"),
                       ({"steering": 3}, "session.providerData.tts.steering"),
                       ({"pitch": 2}, "session.providerData.tts.pitch"), ("loud", "session.providerData.tts")]:
        with pytest.raises(ProtocolError) as caught:
            SessionConfig.initial(defaults).merge({"providerData": {"tts": bad}}, defaults)
        assert caught.value.param == param, (bad, caught.value.param)


def test_backchannels_say_when_they_cannot_work(defaults):
    from dataclasses import replace

    from cadence.processors.backchannel import BackchannelParams

    with_stage = replace(defaults, backchannel=BackchannelParams(), pause_verdicts=False)
    session = SessionConfig.initial(with_stage)
    with pytest.raises(ProtocolError) as caught:  # no pause verdicts without the turn stage's text_model
        session.merge({"providerData": {"backchannel": {"require_pause": True}}}, with_stage)
    assert caught.value.param == "session.providerData.backchannel.require_pause"
    on = session.merge({"providerData": {"backchannel": {"enabled": True}}}, with_stage)
    assert "backchannel.enabled" not in on.providerData["unsupported"]
    written = on.merge({"output_modalities": ["text"]}, with_stage)  # nothing spoken: nothing to listen with
    assert "backchannel.enabled" in written.providerData["unsupported"]


def test_backchannel_knobs_are_checked_field_by_field(defaults):
    session = SessionConfig.initial(defaults)
    for backchannel, param in [({"min_gap_ms": -1}, "session.providerData.backchannel.min_gap_ms"),
                               ({"eval_interval_ms": "fast"}, "session.providerData.backchannel.eval_interval_ms"),
                               ({"volume": 1}, "session.providerData.backchannel.volume"),
                               ([1], "session.providerData.backchannel")]:
        with pytest.raises(ProtocolError) as caught:
            session.merge({"providerData": {"backchannel": backchannel}}, defaults)
        assert caught.value.param == param


def test_provider_data_memory_is_checked_field_by_field(defaults):
    session = SessionConfig.initial(defaults)
    config = session.merge({"providerData": {"memory": {"user": "ana", "relevant_facts": 5,
                                                        "state": {"facts": 3}}}}, defaults)
    assert config.providerData["memory"] == {"user": "ana", "relevant_facts": 5}  # state is the server's
    for memory, param in [({"relevant_facts": 99}, "session.providerData.memory.relevant_facts"),
                          ({"usr": "ana"}, "session.providerData.memory.usr"),
                          ({"user": ""}, "session.providerData.memory.user"),
                          ("ana", "session.providerData.memory")]:
        with pytest.raises(ProtocolError) as caught:
            session.merge({"providerData": {"memory": memory}}, defaults)
        assert caught.value.param == param


def test_turn_detection_null_means_the_client_commits(defaults):
    config = SessionConfig.initial(defaults).merge({"audio": {"input": {"turn_detection": None}}}, defaults)
    turn = config.turn_settings(defaults)
    assert turn.mode is None and not turn.create_response


@pytest.mark.parametrize("update, param", [
    ({"audio": {"output": {"voice": "no-such-voice"}}}, "session.audio.output.voice"),
    ({"audio": {"output": {"speed": 3}}}, "session.audio.output.speed"),
    ({"output_modalities": ["audio", "text"]}, "session.output_modalities"),
    ({"output_modalities": ["video"]}, "session.output_modalities.0"),
    ({"audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": 2}}}},
     "session.audio.input.turn_detection.threshold"),
    ({"audio": {"input": {"turn_detection": {"type": "server_vad", "endOfTurnConfidenceThreshold": -1}}}},
     "session.audio.input.turn_detection.endOfTurnConfidenceThreshold"),
    ({"providerData": {"stt": {"vadThreshold": 7}}}, "session.providerData.stt.vadThreshold"),
    ({"providerData": "yes"}, "session.providerData"),
    ({"audio": {"input": {"transcription": {"language": "fr"}}}}, "session.audio.input.transcription.language"),
    ({"max_output_tokens": "lots"}, "session.max_output_tokens"),
])
def test_values_cadence_cannot_honour_are_refused_with_their_param(defaults, update, param):
    config = SessionConfig.initial(defaults)
    before = config.wire()
    with pytest.raises(ProtocolError) as info:
        config.merge(update, defaults)
    assert info.value.param == param and info.value.code == "invalid_value"
    assert config.wire() == before  # the session is unchanged


def test_beta_keys_normalise_into_the_typed_session(defaults):
    update = {"modalities": ["text"], "voice": "en_US-joe-medium", "input_audio_format": "g711_ulaw",
              "turn_detection": {"type": "server_vad", "silence_duration_ms": 250}}
    normalize_session(update)
    config = SessionConfig.initial(defaults).merge(update, defaults)
    assert config.text_only and config.audio.input.format.type == "audio/pcmu"
    assert config.turn_settings(defaults).vad_stop_secs == 0.25


def test_unknown_keys_are_kept_and_echoed(defaults):
    config = SessionConfig.initial(defaults).merge({"truncation": "auto", "tracing": None}, defaults)
    assert config.wire()["truncation"] == "auto" and "tracing" in config.wire()


def test_echoing_a_session_back_with_another_eagerness_takes_the_new_eagerness(defaults):
    config = SessionConfig.initial(defaults).merge(
        {"audio": {"input": {"turn_detection": {"type": "semantic_vad", "eagerness": "high"}}}}, defaults)
    echoed = config.wire()["audio"]["input"]["turn_detection"]
    config = config.merge({"audio": {"input": {"turn_detection": {**echoed, "eagerness": "low"}}}}, defaults)
    assert (config.turn_settings(defaults).end_of_turn_threshold, config.turn_settings(defaults).max_wait_secs) \
        == (0.7, 8.0)
    server = SessionConfig.initial(defaults).wire()["audio"]["input"]["turn_detection"]  # the YAML's 0.8 / 1.7 s
    config = config.merge({"audio": {"input": {"turn_detection": {
        **server, "type": "semantic_vad", "eagerness": "high"}}}}, defaults)
    assert config.turn_settings(defaults).end_of_turn_threshold == 0.3


def test_semantic_vad_auto_keeps_the_yaml_values(defaults):
    config = SessionConfig.initial(defaults).merge(
        {"audio": {"input": {"turn_detection": {"type": "semantic_vad"}}}}, defaults)
    turn = config.turn_settings(defaults)
    assert (turn.end_of_turn_threshold, turn.max_wait_secs) == (0.8, 1.7)
    assert config.wire()["audio"]["input"]["turn_detection"]["eagerness"] == "auto"


def test_a_null_provider_field_unsets_it_and_a_wrong_type_is_refused(defaults):
    config = SessionConfig.initial(defaults).merge({"providerData": {"stt": {"vadThreshold": 0.3}}}, defaults)
    config = config.merge({"providerData": {"stt": {"vadThreshold": None}}}, defaults)
    assert config.turn_settings(defaults).vad_confidence == 0.62  # back to turn_detection's (the YAML's)
    with pytest.raises(ProtocolError) as info:
        config.merge({"providerData": {"stt": {"inactivityTimeoutSeconds": "soon"}}}, defaults)
    assert info.value.param == "session.providerData.stt.inactivityTimeoutSeconds"


def test_transcription_fields_left_out_keep_the_yaml_values(defaults):
    update = {"input_audio_transcription": {"model": "whisper-1"}}
    normalize_session(update)
    transcription = SessionConfig.initial(defaults).merge(update, defaults).audio.input.transcription
    assert (transcription.model, transcription.language, transcription.prompt) == (
        "whisper-tiny.en", "en", "Vera, Nova")  # the model that runs, and the YAML's prompt
    update = {"audio": {"input": {"transcription": {"prompt": None}}}}
    assert SessionConfig.initial(defaults).merge(update, defaults).audio.input.transcription.prompt is None


def test_a_pipeline_without_tts_answers_in_text_and_refuses_audio():
    from cadence.stages import StageRoles

    loaded = validate(load_config_text("pipeline: [{type: context}, {type: llm}]"))
    defaults = SessionDefaults.from_config(loaded)
    config = SessionConfig.initial(defaults)
    assert config.text_only
    with pytest.raises(ProtocolError) as info:
        config.merge({"output_modalities": ["audio"]}, defaults)
    assert info.value.param == "session.output_modalities"
    # a plugin stage that speaks (it took the tts role) makes audio the default again
    plugin = SessionDefaults.from_config(loaded, StageRoles(tts=object()))
    assert SessionConfig.initial(plugin).output_modalities == ["audio"] and plugin.voices == ()
