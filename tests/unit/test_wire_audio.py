"""Wire audio formats: audio/pcm passes through, G.711 µ-law and A-law round-trip at 8 kHz."""

from __future__ import annotations

import numpy as np
import pytest

from cadence.transports.realtime.protocol import ProtocolError
from cadence.transports.realtime.wire_audio import WIRE_RATE, WireAudio

G711 = ["audio/pcmu", "audio/pcma"]


def tone(freq: float = 440.0, seconds: float = 0.5, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(WIRE_RATE * seconds)) / WIRE_RATE
    return (amplitude * 32767 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


def best_correlation(reference: np.ndarray, signal: np.ndarray, max_lag: int = 1200) -> float:
    """Highest normalized correlation of ``signal`` with ``reference`` over resampler delays."""
    ref = reference.astype(np.float64)
    sig = signal.astype(np.float64)
    n = min(len(ref), len(sig)) - max_lag
    assert n > WIRE_RATE // 10, "too little audio came back to compare"
    best = -1.0
    for lag in range(0, max_lag):
        a, b = ref[:n], sig[lag:lag + n]
        best = max(best, float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9)))
    return best


def peak_hz(signal: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(signal.astype(np.float64) * np.hanning(len(signal))))
    return float(np.fft.rfftfreq(len(signal), 1 / rate)[np.argmax(spectrum)])


async def test_pcm_passes_through_unchanged():
    wire = WireAudio()
    pcm = tone(seconds=0.05).tobytes()
    assert await wire.decode(pcm, "audio/pcm") == pcm
    assert await wire.encode(pcm, "audio/pcm") == pcm


async def test_pcm_with_an_odd_byte_count_is_rejected():
    with pytest.raises(ProtocolError) as info:
        await WireAudio().decode(b"\x00\x01\x02", "audio/pcm")
    assert (info.value.code, info.value.param) == ("invalid_audio", "audio")


@pytest.mark.parametrize("kind", G711)
async def test_g711_round_trip_of_a_tone(kind):
    source = tone()
    wire = WireAudio()  # as in a session: one instance, separate resamplers each way
    # sent in 20 ms chunks, as a session streams reply audio
    encoded = b"".join([await wire.encode(source[i:i + 480].tobytes(), kind) for i in range(0, len(source), 480)])
    # 8 kHz, one byte per sample: a third as many samples in half the bytes each; the stream
    # resampler keeps back its latency (< 150 ms) until more audio comes
    expected = len(source) // 3
    assert expected - 1200 <= len(encoded) <= expected, (len(encoded), expected)

    decoded = np.frombuffer(b"".join([await wire.decode(encoded[i:i + 160], kind)
                                      for i in range(0, len(encoded), 160)]), np.int16)
    assert 3 * len(encoded) - 3600 <= len(decoded) <= 3 * len(encoded), (len(decoded), len(encoded))
    assert 0.8 < rms(decoded) / rms(source) < 1.2
    assert abs(peak_hz(decoded, WIRE_RATE) - 440) < 10
    assert best_correlation(source, decoded) > 0.95


async def test_the_two_laws_differ_on_the_wire():
    pcm = tone().tobytes()
    assert await WireAudio().encode(pcm, "audio/pcmu") != await WireAudio().encode(pcm, "audio/pcma")


@pytest.mark.parametrize("kind, silence_byte", [("audio/pcmu", 0xFF), ("audio/pcma", 0xD5)])
async def test_each_law_decodes_its_own_silence(kind, silence_byte):
    """µ-law's zero is 0xFF and A-law's is 0xD5; a swapped codec would decode loud noise."""
    silence = bytes([silence_byte]) * 1600
    decoded = np.frombuffer(await WireAudio().decode(silence, kind), np.int16)
    assert len(decoded) > 0 and int(np.abs(decoded).max()) < 50
    other = "audio/pcma" if kind == "audio/pcmu" else "audio/pcmu"
    assert int(np.abs(np.frombuffer(await WireAudio().decode(silence, other), np.int16)).max()) > 50
