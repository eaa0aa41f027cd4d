"""Config validation: every mistake names file, line, key path, what was expected, and a fix."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from cadence.errors import ConfigError
from cadence.config import load_and_validate, load_config_text, validate
from conftest import NOVA, run_cli


def nova_with(tmp_path: Path, old: str, new: str) -> tuple[Path, int]:
    """A copy of nova.yaml with one edit; returns its path and the edited line's number."""
    text = NOVA.read_text()
    assert old in text
    line = text[: text.index(old)].count("\n") + 1
    path = tmp_path / "nova.yaml"
    path.write_text(text.replace(old, new, 1))
    return path, line


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_and_validate(str(path))
    return str(info.value)


def test_nova_is_valid():
    config = load_and_validate(str(NOVA))
    assert [s.spec.name for s in config.stages] == ["vad", "stt", "turn", "context", "llm", "filler", "tts", "backchannel"]
    assert config.config.server.host == "127.0.0.1"


def test_a_text_scored_turn_needs_stt_before_it():
    from cadence.config import load_config_text, validate

    text = "pipeline:\n  - {type: vad}\n  - {type: turn, text_model: qwen2.5-coder-0.5b-instruct}\n  - {type: stt}\n"
    with pytest.raises(ConfigError) as info:
        validate(load_config_text(text))
    assert "pipeline[1].text_model" in str(info.value) and "after an `stt` entry" in str(info.value)
    text = "pipeline:\n  - {type: vad}\n  - {type: stt}\n  - {type: turn, text_model: qwen-typo}\n"
    with pytest.raises(ConfigError) as info:
        validate(load_config_text(text))
    assert "pipeline[2].text_model" in str(info.value) and "'qwen-typo' is neither a packaged model" in str(info.value)


def test_misspelled_key_names_file_line_and_suggestion(tmp_path):
    path, line = nova_with(tmp_path, "max_tokens: 60", "max_tokenz: 60")
    message = error_of(path)
    assert f"{path}:{line}:" in message
    assert "pipeline[4].max_tokenz" in message
    assert "did you mean 'max_tokens'?" in message


def test_misspelled_key_in_a_section_and_in_a_provider(tmp_path):
    path, line = nova_with(tmp_path, "n_ctx: 2048", "n_ctxx: 2048")
    message = error_of(path)
    assert f"{path}:{line}:" in message and "router.providers.local.n_ctxx" in message
    assert "did you mean 'n_ctx'?" in message

    path, line = nova_with(tmp_path, "  port: 8000", "  prot: 8000")
    message = error_of(path)
    assert f"{path}:{line}:" in message and "server.prot" in message and "did you mean 'port'?" in message


def test_wrong_type_says_what_was_expected(tmp_path):
    path, line = nova_with(tmp_path, "port: 8000", "port: eighty")
    message = error_of(path)
    assert f"{path}:{line}:" in message and "server.port" in message
    assert "valid integer" in message and "'eighty'" in message

    path, line = nova_with(tmp_path, "threshold: 0.5", "threshold: 1.5")
    message = error_of(path)
    assert f"{path}:{line}:" in message and "pipeline[2].threshold" in message and "less than or equal to 1" in message


def test_unknown_processor_type_lists_types_and_suggests(tmp_path):
    path, line = nova_with(tmp_path, "- type: tts", "- type: ttts")
    message = error_of(path)
    assert f"{path}:{line}:" in message and "pipeline[6].type" in message
    assert "unknown processor type 'ttts'" in message and "did you mean 'tts'?" in message
    assert "known types: backchannel, context, filler, llm, stt, tts, turn, vad" in message


def test_missing_env_var_names_the_variable_and_the_line(tmp_path, monkeypatch):
    monkeypatch.delenv("CADENCE_TEST_MISSING_KEY", raising=False)
    path, line = nova_with(tmp_path, '"${CADENCE_API_KEY:-}"', '"${CADENCE_TEST_MISSING_KEY}"')
    message = error_of(path)
    assert f"{path}:{line}:" in message and "server.api_keys[0]" in message
    assert "${CADENCE_TEST_MISSING_KEY} is not set" in message


def test_env_var_and_default_interpolate(monkeypatch):
    monkeypatch.setenv("CADENCE_TEST_KEY", "s3cret")
    text = "server: {api_keys: ['${CADENCE_TEST_KEY}', '${CADENCE_TEST_UNSET:-fallback}']}\npipeline: [{type: vad}]"
    config = validate(load_config_text(text))
    assert [k.get_secret_value() for k in config.config.server.api_keys] == ["s3cret", "fallback"]
    assert "s3cret" not in repr(config.config.server)  # secrets are not printed


def test_every_problem_is_reported_at_once(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("server:\n  port: x\npipeline:\n  - type: vad\n    stop_sec: 1\n  - type: nope\n")
    message = error_of(path)
    assert "3 problem(s)" in message
    assert f"{path}:2:" in message and f"{path}:5:" in message and f"{path}:6:" in message


def test_include_is_confined_to_the_config_folder(tmp_path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "stages.yaml").write_text("- type: vad\n  stop_sec: 0.3\n")
    (tmp_path / "secret.yaml").write_text("- type: vad\n")
    main = tmp_path / "conf" / "main.yaml"

    main.write_text("pipeline: !include stages.yaml\n")
    message = error_of(main)  # the included file's own line is reported
    assert f"{tmp_path / 'conf' / 'stages.yaml'}:2:" in message and "did you mean 'stop_secs'?" in message

    main.write_text("pipeline: !include ../secret.yaml\n")
    message = error_of(main)
    assert "outside the config's folder" in message and f"{main}:1:" in message


def test_invalid_yaml_names_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("pipeline:\n  - type: vad\n   bad: [\n")
    assert re.search(rf"{re.escape(str(path))}:\d+:\d+: invalid YAML", error_of(path))


def test_check_flag_exit_codes(tmp_path):
    ok = run_cli(str(NOVA), "--check")
    assert ok.returncode == 0, ok.stderr
    assert "OK (8 processors" in ok.stdout
    path, line = nova_with(tmp_path, "max_tokens: 60", "max_tokenz: 60")
    bad = run_cli(str(path), "--check")
    assert bad.returncode == 1
    assert f"{path}:{line}:" in bad.stderr and "did you mean 'max_tokens'?" in bad.stderr


def test_host_and_port_override_the_server_section():
    result = run_cli(str(NOVA), "--check", "--host", "0.0.0.0", "--port", "9123")
    assert result.returncode == 0 and "server 0.0.0.0:9123" in result.stdout


def test_schema_describes_the_whole_file_and_accepts_nova():
    result = run_cli("--schema")
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    jsonschema.validate(yaml.safe_load(NOVA.read_text()), schema)
    bad = yaml.safe_load(NOVA.read_text())
    bad["pipeline"][4]["max_tokenz"] = 3
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_list_processors_has_a_line_per_type():
    result = run_cli("--list-processors")
    assert result.returncode == 0
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert {"vad", "turn", "stt", "context", "llm", "tts"} <= set(names)
    assert all(len(line.split(None, 1)) == 2 for line in result.stdout.splitlines())


def test_shipped_configs_and_examples_validate():
    for config in [*sorted(NOVA.parent.glob("*.yaml")), *sorted((NOVA.parents[1] / "examples").rglob("*.yaml"))]:
        if config.name == "persona.yaml":  # an !include fragment, not a whole config
            continue
        plugin = NOVA.parents[1] / "tests" / "plugins" / "cadence-shout"
        result = run_cli(str(config), "--check", env={**os.environ, "PYTHONPATH": str(plugin)})
        assert result.returncode == 0, (config, result.stderr)


def test_a_backchannel_before_the_tts_is_refused_naming_the_line(tmp_path):
    path = tmp_path / "bc.yaml"
    path.write_text("pipeline:\n  - type: vad\n  - type: backchannel\n    enabled: true\n  - type: tts\n")
    message = error_of(path)
    assert "bc.yaml:3:" in message and "pipeline[1].type" in message and "after a `tts` entry" in message, message
