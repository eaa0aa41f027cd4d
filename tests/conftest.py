"""Shared fixtures: the real embedded stack, loaded once per test session."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cadence.models import ModelStore
from cadence.pipelines import load_and_validate
from cadence.pipelines.builder import PipelineFactory

ROOT = Path(__file__).resolve().parents[1]
NOVA = ROOT / "configs" / "nova.yaml"


@pytest.fixture(scope="session")
def store() -> ModelStore:
    return ModelStore()


@pytest.fixture(scope="session")
def nova_factory(store: ModelStore) -> PipelineFactory:
    config = load_and_validate(str(NOVA))
    for stage in config.stages:
        if stage.spec.name == "llm":
            stage.params.seed = 7  # repeatable replies: a test's outcome must not depend on sampling luck
    factory = PipelineFactory(config, store)
    factory.prepare()
    return factory


@pytest.fixture(scope="session")
def speak(store: ModelStore):
    """Piper speaks ``text``; returns mono int16 at ``rate`` Hz."""
    import soxr

    voice = store.piper_voice("en_US-joe-medium")

    def _speak(text: str, rate: int = 16000) -> np.ndarray:
        audio = np.concatenate([chunk.audio_float_array for chunk in voice.synthesize(text)])
        audio = soxr.resample(audio, voice.config.sample_rate, rate)
        return (np.clip(audio, -1, 1) * 32767).astype(np.int16)

    return _speak


@pytest.fixture(scope="session")
def transcribe(store: ModelStore):
    """Whisper tiny.en transcribes mono int16 audio at ``rate`` Hz."""
    import soxr

    model = store.whisper("whisper-tiny.en")

    def _transcribe(audio: np.ndarray, rate: int) -> str:
        samples = audio.astype(np.float32) / 32768.0
        if rate != 16000:
            samples = soxr.resample(samples, rate, 16000)
        segments, _ = model.transcribe(samples, language="en")
        return " ".join(segment.text.strip() for segment in segments)

    return _transcribe


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word-level Levenshtein distance over the reference length."""
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[len(hyp)] / max(1, len(ref))


def run_cli(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the installed ``run-pipeline`` console script."""
    exe = shutil.which("run-pipeline") or str(Path(sys.executable).parent / "run-pipeline")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


def start_server(config: Path, *args: str, env: dict | None = None) -> tuple[subprocess.Popen, str]:
    """Start ``run-pipeline CONFIG --port 0``; returns the process and its http://host:port."""
    import re
    import time

    exe = shutil.which("run-pipeline") or str(Path(sys.executable).parent / "run-pipeline")
    proc = subprocess.Popen([exe, str(config), "--port", "0", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        match = re.search(r"serving on (http://\S+)", line)
        if match:
            return proc, match.group(1)
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"run-pipeline did not start serving: {proc.stdout.read()}")


@pytest.fixture(scope="session")
def nova_server():
    """`run-pipeline configs/nova.yaml` itself, as a user starts it; yields its base URL."""
    proc, url = start_server(NOVA)
    yield url
    proc.terminate()
    proc.wait(timeout=30)
