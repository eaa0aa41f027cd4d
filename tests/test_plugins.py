"""Processor plugins: an installed entry-point package, and a module:Class of the user's own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cadence.errors import ConfigError
from cadence.config import load_and_validate
from cadence.pipelines.builder import PipelineFactory
from cadence.transports.file import FileConversation
from conftest import NOVA, ROOT, run_cli

PLUGIN = ROOT / "tests" / "plugins" / "cadence-shout"


def config_with_stage(tmp_path: Path, stage_yaml: str) -> Path:
    """nova.yaml with an extra stage between llm and tts."""
    text = NOVA.read_text().replace("  - type: tts", f"{stage_yaml}\n  - type: tts", 1)
    path = tmp_path / "with-plugin.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory) -> str:
    """The plugin package pip-installed into a private folder (offline, no build isolation)."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(target), str(PLUGIN)],
        check=True,
    )
    return str(target)


def test_installed_plugin_is_listed_and_runs_in_a_pipeline(plugin_path, tmp_path):
    env = {**os.environ, "PYTHONPATH": plugin_path}
    listed = run_cli("--list-processors", env=env)
    assert "shout" in listed.stdout and "Upper-cases LLM text" in listed.stdout

    config = config_with_stage(tmp_path, "  - type: shout\n    suffix: ''")
    result = run_cli(str(config), "--text", "Hello Nova, how are you today?", env=env)
    assert result.returncode == 0, result.stderr
    reply = next(line for line in result.stdout.splitlines() if line.startswith("bot:"))[4:].strip()
    assert any(c.isalpha() for c in reply) and reply == reply.upper(), reply


def test_plugin_params_are_validated_like_builtins(plugin_path, tmp_path):
    env = {**os.environ, "PYTHONPATH": plugin_path}
    config = config_with_stage(tmp_path, "  - type: shout\n    sufix: '!'")
    result = run_cli(str(config), "--check", env=env)
    assert result.returncode == 1
    assert "pipeline[6].sufix" in result.stderr and "did you mean 'suffix'?" in result.stderr


async def test_module_class_processor_runs_in_a_pipeline(tmp_path, store, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "tests"))
    config = load_and_validate(str(config_with_stage(tmp_path, "  - type: custom_stage:Lowercase")))
    result = await FileConversation(PipelineFactory(config, store)).run_text(["Say HELLO to me, Nova!"])
    reply = result.exchanges[0].reply
    assert any(c.isalpha() for c in reply) and reply == reply.lower(), reply


def test_module_class_errors_are_clear(tmp_path):
    for stage, expected in [
        ("custom_stage_missing:Thing", "cannot import module 'custom_stage_missing'"),
        ("json:nothing_here", "module 'json' has no attribute 'nothing_here'"),
        ("json:JSONDecoder", "is not a pipecat FrameProcessor subclass"),
    ]:
        with pytest.raises(ConfigError, match=expected):
            load_and_validate(str(config_with_stage(tmp_path, f"  - type: {stage}")))
