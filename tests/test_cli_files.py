"""The file transport from the command line: WAV/text in, transcript and WAV out, clear errors."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from conftest import NOVA, run_cli, word_error_rate


def test_input_wav_at_another_rate_in_stereo(tmp_path, speak):
    question = "Can you tell me a joke?"
    mono = speak(question, rate=44100)
    wav = tmp_path / "question.wav"
    sf.write(wav, np.stack([mono, mono], axis=1), 44100, subtype="PCM_16")
    out = tmp_path / "reply.wav"
    result = run_cli(str(NOVA), "--input", str(wav), "--output", str(out))
    assert result.returncode == 0, result.stderr
    you = next(line for line in result.stdout.splitlines() if line.startswith("you:"))[4:]
    assert word_error_rate(question, you) <= 0.2, you
    assert next(line for line in result.stdout.splitlines() if line.startswith("bot:"))[4:].strip()
    audio, rate = sf.read(out, dtype="int16")
    assert rate == 24000 and len(audio) > rate // 2 and np.abs(audio).max() > 1000


def test_missing_input_file_fails_clearly(tmp_path):
    result = run_cli(str(NOVA), "--input", str(tmp_path / "nope.wav"))
    assert result.returncode == 1
    assert "nope.wav: input file not found" in result.stderr


def test_corrupt_input_file_fails_clearly(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    result = run_cli(str(NOVA), "--input", str(bad))
    assert result.returncode == 1
    assert "bad.wav: not a readable audio file" in result.stderr


def test_silent_input_says_no_turn_was_heard(tmp_path):
    quiet = tmp_path / "quiet.wav"
    sf.write(quiet, np.zeros(16000, dtype=np.int16), 16000, subtype="PCM_16")
    result = run_cli(str(NOVA), "--input", str(quiet), "--pace", "0")
    assert result.returncode == 1
    assert "no user turn was heard" in result.stderr


def test_missing_config_file_and_missing_output_folder(tmp_path):
    result = run_cli(str(tmp_path / "none.yaml"), "--check")
    assert result.returncode == 1 and "config file not found" in result.stderr
    result = run_cli(str(NOVA), "--text", "hi", "--output", str(tmp_path / "no" / "such" / "dir" / "x.wav"))
    assert result.returncode == 1 and "does not exist" in result.stderr
