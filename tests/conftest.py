"""Shared fixtures: the real embedded stack, loaded once per test session."""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from cadence.models import ModelStore
from cadence.config import load_and_validate
from cadence.pipelines.builder import PipelineFactory

ROOT = Path(__file__).resolve().parents[1]
NOVA = ROOT / "configs" / "nova.yaml"


@pytest.fixture(scope="session")
def store() -> ModelStore:
    return ModelStore()


@pytest.fixture(scope="session")
def nova_factory(store: ModelStore, tmp_path_factory) -> PipelineFactory:
    from cadence.memory.service import MemoryService

    config = load_and_validate(str(NOVA))
    for stage in config.stages:
        if stage.spec.name == "llm":
            stage.params.seed = 7  # repeatable replies: a test's outcome must not depend on sampling luck
    factory = PipelineFactory(config, store)
    # Users' memory goes to a store of this test run, never to the data directory's.
    memory = config.config.memory.model_copy(update={"store": str(tmp_path_factory.mktemp("memory") / "memory.db")})
    factory.memory = MemoryService(memory, factory.router)
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


class _DrainedOutput:
    """Stands in for ``proc.stdout`` once a thread drains it: ``read()`` waits for the process's
    output to end and returns the lines kept (the last ``maxlen``)."""

    def __init__(self, lines: collections.deque, thread: threading.Thread):
        self.lines = lines
        self._thread = thread

    def read(self, timeout: float = 30) -> str:
        self._thread.join(timeout)
        return "".join(self.lines)

    def close(self) -> None:
        pass


def start_server(config: Path, *args: str, env: dict | None = None,
                 timeout: float = 180) -> tuple[subprocess.Popen, str]:
    """Start ``run-pipeline CONFIG --port 0``; returns the process and its http(s)://host:port.

    A daemon thread keeps reading the server's output (stdout and stderr) so a chatty server
    never blocks on a full pipe; the last 2000 lines stay in ``proc.output_lines``, and
    ``proc.stdout.read()`` returns them once the process has exited.
    """
    exe = shutil.which("run-pipeline") or str(Path(sys.executable).parent / "run-pipeline")
    proc = subprocess.Popen([exe, str(config), "--port", "0", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
    pipe = proc.stdout
    lines: collections.deque[str] = collections.deque(maxlen=2000)
    found: list[str] = []
    settled = threading.Event()  # set at the "serving on" line, or when the output ends

    def drain() -> None:
        try:
            for line in pipe:
                lines.append(line)
                if not found and (match := re.search(r"serving on (https?://\S+)", line)):
                    found.append(match.group(1))
                    settled.set()
        finally:
            settled.set()
            pipe.close()

    thread = threading.Thread(target=drain, name=f"run-pipeline-{proc.pid}-output", daemon=True)
    thread.start()
    proc.output_lines = lines
    proc.stdout = _DrainedOutput(lines, thread)
    settled.wait(timeout)
    if found:
        return proc, found[0]
    proc.kill()
    proc.wait(timeout=30)
    raise AssertionError(f"run-pipeline did not start serving: {proc.stdout.read()}")


@pytest.fixture(scope="session")
def nova_server():
    """`run-pipeline configs/nova.yaml` itself, as a user starts it; yields its base URL."""
    proc, url = start_server(NOVA)
    yield url
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="session")
def postgres_url():
    """A throwaway PostgreSQL server's URL; skipped, with the reason, where PostgreSQL is not
    installed (one that is installed and does not start fails the tests)."""
    from pg_server import PostgresMissing, throwaway_postgres

    try:
        with throwaway_postgres() as url:
            yield url
    except PostgresMissing as exc:
        pytest.skip(f"PostgreSQL store tests need a PostgreSQL server: {exc}")
