"""Tests for cadence.codecs: every format round-trips through a standard decoder.

Where possible the output is read back with a decoder independent of
``codecs.decode`` (soundfile for WAV/FLAC, plain PyAV demuxing for the rest),
so an encoder bug cannot be masked by a matching decoder bug.
"""

from __future__ import annotations

import io
import struct

import av
import numpy as np
import pytest
import soundfile as sf

from cadence import codecs

RATE = 22050
TONE_S = 1.0
CHIRP_S = 0.2


def _signal() -> np.ndarray:
    """1 s of 440 Hz followed by a short 300->3000 Hz chirp, as int16."""
    t = np.arange(int(RATE * TONE_S)) / RATE
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    tc = np.arange(int(RATE * CHIRP_S)) / RATE
    f0, f1 = 300.0, 3000.0
    chirp = 0.3 * np.sin(2 * np.pi * (f0 * tc + (f1 - f0) / (2 * CHIRP_S) * tc**2))
    return (np.concatenate([tone, chirp]) * 32767).astype("<i2")


SIGNAL = _signal()
PCM = SIGNAL.tobytes()
DURATION = len(SIGNAL) / RATE

# Documented default output rates for 22050 Hz input.
EXPECTED_RATE = {
    "wav": 22050,
    "pcm": 22050,
    "mp3": 22050,
    "opus": 24000,
    "aac": 22050,
    "flac": 22050,
    "mulaw": 8000,
    "alaw": 8000,
}

# Lossy codecs add encoder priming/padding (AAC in ADTS has no way to signal
# it; streamed MP3 has no LAME gapless header), hence the slack.
DURATION_TOL = {"mp3": 0.1, "aac": 0.1, "opus": 0.03}


def _standard_decode(
    data: bytes, fmt: str, rate: int, *, streamed: bool = False
) -> tuple[np.ndarray, int]:
    """Decode ``data`` without codecs.decode; return mono float samples and rate."""
    if fmt == "pcm":
        return np.frombuffer(data, dtype="<i2") / 32768.0, rate
    # A streamed FLAC header says total_samples = 0 ("unknown", legal per the
    # spec) and libsndfile then fails at end of stream, so FFmpeg reads it.
    if fmt == "wav" or (fmt == "flac" and not streamed):
        samples, sr = sf.read(io.BytesIO(data), dtype="float32")
        return samples, sr
    if fmt in ("mulaw", "alaw"):
        container = av.open(
            io.BytesIO(data), format=fmt, options={"sample_rate": str(rate), "channels": "1"}
        )
    else:
        container = av.open(io.BytesIO(data))
    with container:
        stream = container.streams.audio[0]
        frames = [f.to_ndarray().astype(np.float64) for f in container.decode(stream)]
        sr = stream.codec_context.sample_rate
    # Planar float (fltp) frames are (channels, n); mono means one row.
    samples = np.concatenate([f.reshape(-1) for f in frames])
    if np.issubdtype(frames[0].dtype, np.integer) or np.abs(samples).max() > 2:
        samples = samples / 32768.0
    return samples, sr


def _dominant_hz(samples: np.ndarray, sr: int) -> float:
    """Strongest frequency of the first second (the 440 Hz tone)."""
    head = samples[:sr]
    spectrum = np.abs(np.fft.rfft(head * np.hanning(len(head))))
    return float(np.fft.rfftfreq(len(head), 1 / sr)[np.argmax(spectrum)])


def _stream(fmt: str, pieces: int = 5, **kw: int) -> tuple[bytes, list[bytes]]:
    """Encode PCM via StreamEncoder fed in ``pieces`` odd-sized chunks."""
    enc = codecs.StreamEncoder(fmt, RATE, **kw)
    # Odd split points exercise the half-sample carry between feeds.
    bounds = np.linspace(0, len(PCM), pieces + 1).astype(int) | 1
    bounds[0], bounds[-1] = 0, len(PCM)
    outs = [enc.feed(PCM[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    outs.append(enc.close())
    return b"".join(outs), outs


def _opus_head_rate(data: bytes) -> int:
    """The input sample rate recorded in the Ogg OpusHead packet."""
    i = data.find(b"OpusHead")
    assert i >= 0
    return struct.unpack("<I", data[i + 12 : i + 16])[0]


def _check(data: bytes, fmt: str, *, streamed: bool = False) -> None:
    rate = EXPECTED_RATE[fmt]
    samples, sr = _standard_decode(data, fmt, rate, streamed=streamed)
    if fmt == "opus":
        # Opus decoders always output 48 kHz; the encode rate is in OpusHead.
        assert _opus_head_rate(data) == rate
        assert sr == 48000
    else:
        assert sr == rate
    assert abs(len(samples) / sr - DURATION) <= DURATION_TOL.get(fmt, 0.005)
    assert abs(_dominant_hz(samples, sr) - 440) < 5
    # Waveform-level match for codecs that keep sample alignment.
    if fmt in ("wav", "pcm", "flac", "mulaw", "alaw"):
        ref = np.frombuffer(codecs.resample(PCM, RATE, rate), dtype="<i2") / 32768.0
        n = min(len(ref), len(samples))
        assert np.corrcoef(ref[:n], samples[:n])[0, 1] > 0.99


@pytest.mark.parametrize("fmt", list(codecs.FORMATS))
def test_encode_whole(fmt: str) -> None:
    _check(codecs.encode(PCM, RATE, fmt), fmt)


@pytest.mark.parametrize("fmt", list(codecs.FORMATS))
def test_encode_streamed(fmt: str) -> None:
    data, _ = _stream(fmt)
    _check(data, fmt, streamed=True)


@pytest.mark.parametrize("fmt", ["wav", "mp3", "opus", "aac", "flac"])
def test_own_decode_roundtrip(fmt: str) -> None:
    out = codecs.decode(codecs.encode(PCM, RATE, fmt), 16000)
    assert out.dtype == np.float32
    assert np.abs(out).max() <= 1.0
    assert abs(len(out) / 16000 - DURATION) <= DURATION_TOL.get(fmt, 0.005)
    assert abs(_dominant_hz(out, 16000) - 440) < 5


@pytest.mark.parametrize(("muxer", "codec"), [("mp4", "aac"), ("webm", "libopus")])
def test_decode_other_containers(muxer: str, codec: str) -> None:
    buf = io.BytesIO()
    with av.open(buf, "w", format=muxer) as out:
        stream = out.add_stream(codec, rate=48000)
        stream.layout = "stereo"
        t = np.arange(48000) / 48000
        tone = (0.5 * np.sin(2 * np.pi * 440 * t) * 32767).astype("<i2")
        frame = av.AudioFrame.from_ndarray(
            np.repeat(tone, 2).reshape(1, -1), format="s16", layout="stereo"
        )
        frame.sample_rate, frame.pts = 48000, 0
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    samples = codecs.decode(buf.getvalue(), 16000)
    assert abs(len(samples) / 16000 - 1.0) < 0.1
    assert abs(_dominant_hz(samples, 16000) - 440) < 5


def test_out_rate_respected_and_snapped() -> None:
    data = codecs.encode(PCM, RATE, "flac", out_rate=16000)
    assert sf.info(io.BytesIO(data)).samplerate == 16000
    # 22050 is not an Opus rate: nearest allowed is 24000.
    assert codecs.StreamEncoder("opus", RATE, out_rate=22050).out_rate == 24000
    assert codecs.StreamEncoder("mp3", RATE, out_rate=23000).out_rate == 22050
    assert codecs.StreamEncoder("mulaw", RATE, out_rate=16000).out_rate == 16000
    assert codecs.StreamEncoder("wav", 44100).out_rate == 44100


def test_garbage_rejected() -> None:
    with pytest.raises(ValueError, match="could not be decoded"):
        codecs.decode(np.random.default_rng(0).bytes(4000))
    with pytest.raises(ValueError, match="could not be decoded"):
        codecs.decode(b"")


def test_bad_out_rate() -> None:
    with pytest.raises(ValueError, match="8000..48000"):
        codecs.encode(PCM, RATE, "mp3", out_rate=9)
    with pytest.raises(ValueError, match="8000..48000"):
        codecs.StreamEncoder("wav", RATE, out_rate=96000)


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="wav, pcm, mp3, opus, aac, flac, mulaw, alaw"):
        codecs.encode(PCM, RATE, "ogg")


def test_decode_length_limit() -> None:
    streamed, _ = _stream("mp3")  # no Xing header: limit must trip mid-decode
    with pytest.raises(ValueError, match="0.5 s limit"):
        codecs.decode(streamed, max_seconds=0.5)
    assert len(codecs.decode(streamed, max_seconds=5)) > 0


def test_mp3_stream_is_prompt() -> None:
    enc = codecs.StreamEncoder("mp3", RATE)
    half = len(PCM) // 2 // 2 * 2  # ~0.6 s of audio
    assert enc.feed(PCM[:half]) != b""
    enc.close()


def test_wav_stream_header() -> None:
    _, outs = _stream("wav")
    head = outs[0][:44]
    assert head[:4] == b"RIFF" and head[8:12] == b"WAVE"
    assert struct.unpack("<I", head[4:8])[0] == 0xFFFFFFFF
    assert head[36:40] == b"data"
    assert struct.unpack("<I", head[40:44])[0] == 0xFFFFFFFF


def test_raw_formats_stream_immediately() -> None:
    for fmt, width in (("pcm", 2), ("mulaw", 1), ("alaw", 1)):
        enc = codecs.StreamEncoder(fmt, 8000)
        assert len(enc.feed(b"\x00\x01" * 800)) == 800 * width
        enc.close()


def test_feed_after_close() -> None:
    enc = codecs.StreamEncoder("pcm", RATE)
    enc.close()
    assert enc.close() == b""
    with pytest.raises(ValueError):
        enc.feed(PCM)


def test_helpers() -> None:
    assert codecs.duration_seconds(b"\x00" * 32000, 16000) == 1.0
    assert codecs.resample(PCM, RATE, RATE) is PCM
    assert len(codecs.resample(PCM, RATE, 44100)) == pytest.approx(2 * len(PCM), abs=4)
    assert all(len(v) == 2 for v in codecs.FORMATS.values())
