"""Loading and running the default config never touches the network."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import NOVA, ROOT, word_error_rate

SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
import netguard
netguard.install()
from cadence.cli import main
rc = main([{config!r}, "--input", {question!r}, "--output", {out!r}])
print("NETWORK ATTEMPTS:", netguard.attempts)
sys.exit(rc)
"""


def test_default_config_loads_and_runs_with_the_network_blocked(tmp_path, speak):
    import numpy as np
    import soundfile as sf

    question = tmp_path / "question.wav"
    silence = np.zeros(8000, dtype=np.int16)  # a microphone's half second before the first word
    sf.write(question, np.concatenate([silence, speak("What do you like to do on weekends?")]), 16000, subtype="PCM_16")
    # No HF_HUB_OFFLINE or similar switch: the default must be offline by construction.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    out = tmp_path / "reply.wav"
    code = SCRIPT.format(tests=str(ROOT / "tests"), config=str(NOVA), out=str(out), question=str(question))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "NETWORK ATTEMPTS: []" in result.stdout, result.stdout
    # the whole path ran: VAD, turn, STT (the question was heard), LLM, TTS
    heard = next(line for line in result.stdout.splitlines() if line.startswith("you:"))[4:]
    assert word_error_rate("What do you like to do on weekends?", heard) <= 0.2, result.stdout
    assert "bot:" in result.stdout and out.stat().st_size > 1000


def test_the_guard_itself_catches_a_connection_attempt():
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT / 'tests')!r}); import netguard, socket; netguard.install()\n"
        "for attempt in (lambda: socket.create_connection(('localhost', 9)), lambda: socket.socket().connect(('127.0.0.1', 9))):\n"
        "    try:\n        attempt()\n    except OSError:\n        pass\n"
        "print(netguard.attempts)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "['getaddrinfo localhost', \"connect ('127.0.0.1', 9)\"]" in result.stdout, result.stdout + result.stderr
