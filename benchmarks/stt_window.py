"""Whisper's encoder window against accuracy and time, on speech Piper generates.

    python benchmarks/stt_window.py                 # windows 30, 20, 15, 10 s
    python benchmarks/stt_window.py --windows 30 15

Speaks a set of sentences at two speaking rates, transcribes each with
``ShortWindowWhisper`` at each window (30 = faster-whisper's own path), and prints per
window: transcripts that differ from the text (words only, case and punctuation ignored),
those that differ from the 30 s path's, and the median time per utterance.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

SENTENCES = [
    "Nova, tell me about the moon.", "Good evening Nova. What did you do today?",
    "I was thinking that maybe we could go to the park tomorrow if the weather is nice.", "Hmm.", "Yes.",
    "What is the capital of France?", "My sister Maya lives in Lisbon and she has two cats.", "Okay.",
    "No, I don't think so.", "Could you tell me a story about a dragon who loves to bake bread?",
    "I had pasta for dinner.", "Where do penguins live?", "Thank you so much.", "Right.",
    "So yesterday I went to the market and I bought apples, pears, and a big watermelon.",
    "What's your favourite colour?",
]


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z' ]", " ", text.lower()).split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=float, nargs="+", default=[30, 20, 15, 10])
    parser.add_argument("--model", default="whisper-tiny.en")
    args = parser.parse_args()
    import soxr
    from piper import SynthesisConfig

    from cadence.models import ModelStore
    from cadence.processors.whisper_stt import ShortWindowWhisper

    store = ModelStore()
    voice = store.piper_voice("en_US-joe-medium")
    model = store.whisper(args.model)
    clips = []
    for text in SENTENCES:
        for length_scale in (1.0, 1.3):
            audio = np.concatenate([c.audio_float_array for c in voice.synthesize(text, SynthesisConfig(
                length_scale=length_scale))])
            audio = soxr.resample(audio, voice.config.sample_rate, 16000).astype(np.float32)
            clips.append((text, np.concatenate([audio, np.zeros(8000, np.float32)])))
    reference: list[str] = []
    print(f"{args.model}, {len(clips)} utterances")
    print(f"{'window':>7} {'≠ text':>7} {'≠ 30 s':>7} {'median':>8}")
    for window in sorted(args.windows, reverse=True):
        whisper = ShortWindowWhisper(model, window_secs=0 if window >= 30 else window)
        outs, times = [], []
        for _, audio in clips:
            started = time.perf_counter()
            segments, _ = whisper.transcribe(audio, language="en")
            times.append(time.perf_counter() - started)
            outs.append(" ".join(s.text for s in segments))
        reference = reference or outs
        wrong = sum(words(o) != words(t) for o, (t, _) in zip(outs, clips))
        differ = sum(words(o) != words(r) for o, r in zip(outs, reference))
        print(f"{window:>6.0f}s {wrong:>7} {differ:>7} {statistics.median(times) * 1000:>6.0f}ms")


if __name__ == "__main__":
    main()
