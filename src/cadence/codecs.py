"""Audio encoding and decoding for the speech and transcription REST routes.

Everything here speaks int16 mono little-endian PCM on the synthesis side and
mono float32 on the transcription side.  Real codecs and containers come from
PyAV (FFmpeg) and resampling from soxr; the only thing written by hand is the
44-byte WAV header, because it is trivial and FFmpeg's WAV muxer adds LIST
chunks and cannot emit the "unknown length" header streaming clients expect.

Output sample rates (``out_rate`` unset):

* ``mulaw`` / ``alaw``: 8000 Hz, the telephony convention.
* ``wav`` / ``pcm`` / ``flac``: the input ``rate``.
* ``opus`` / ``mp3`` / ``aac``: the codec-supported rate nearest to the
  input ``rate`` (ties go to the higher rate), e.g. 22050 Hz input gives
  24000 Hz Opus, 22050 Hz MP3 and 22050 Hz AAC.

An explicit ``out_rate`` must lie in 8000..48000; for opus/mp3/aac an
in-range but unsupported value is snapped to the nearest supported rate the
same way, rather than rejected, so callers can ask for "about 22 kHz" without
knowing each codec's table.
"""

from __future__ import annotations

import io
import struct

import av
import av.audio.resampler
import numpy as np
import soxr

__all__ = [
    "FORMATS",
    "StreamEncoder",
    "decode",
    "duration_seconds",
    "encode",
    "resample",
]

FORMATS: dict[str, tuple[str, str]] = {
    "wav": ("audio/wav", "RIFF WAVE, 16-bit PCM mono"),
    "pcm": ("audio/pcm", "raw 16-bit signed little-endian PCM mono, no header"),
    "mp3": ("audio/mpeg", "MPEG-1/2 Layer III (LAME)"),
    "opus": ("audio/ogg", "Opus in an Ogg container"),
    "aac": ("audio/aac", "AAC-LC in ADTS framing"),
    "flac": ("audio/flac", "FLAC lossless"),
    "mulaw": ("audio/basic", "raw G.711 mu-law, no header"),
    "alaw": ("audio/x-alaw-basic", "raw G.711 A-law, no header"),
}

MIN_RATE = 8000
MAX_RATE = 48000

# Rates each lossy codec accepts, restricted to MIN_RATE..MAX_RATE.
_CODEC_RATES: dict[str, tuple[int, ...]] = {
    "opus": (8000, 12000, 16000, 24000, 48000),
    "mp3": (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000),
    "aac": (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000),
}

# (muxer, encoder, bit rate) for the formats PyAV muxes.  Bit rates are
# sized for mono speech, not music.
_MUXED: dict[str, tuple[str, str, int | None]] = {
    "mp3": ("mp3", "libmp3lame", 64000),
    "opus": ("ogg", "libopus", 32000),
    "aac": ("adts", "aac", 64000),
    "flac": ("flac", "flac", None),
}

_G711 = {"mulaw": "pcm_mulaw", "alaw": "pcm_alaw"}

# The unknown-length marker OpenAI (and FFmpeg on pipes) put in streamed WAV.
_WAV_UNKNOWN = 0xFFFFFFFF


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(
            f"unknown audio format {fmt!r}; supported formats: {', '.join(FORMATS)}"
        )


def _nearest(rate: int, allowed: tuple[int, ...]) -> int:
    # max() over (-distance, rate) prefers the closer rate, then the higher one.
    return max(allowed, key=lambda r: (-abs(r - rate), r))


def _output_rate(fmt: str, rate: int, out_rate: int | None) -> int:
    """Resolve the sample rate a clip of ``fmt`` will actually be written at."""
    _check_format(fmt)
    if rate <= 0:
        raise ValueError(f"input sample rate must be positive, got {rate}")
    if out_rate is not None and not MIN_RATE <= out_rate <= MAX_RATE:
        allowed = _CODEC_RATES.get(fmt)
        extra = f" (for {fmt}: {', '.join(map(str, allowed))})" if allowed else ""
        raise ValueError(
            f"out_rate {out_rate} Hz is out of range for {fmt}; "
            f"allowed {MIN_RATE}..{MAX_RATE} Hz{extra}"
        )
    if out_rate is None:
        # Clamp rather than reject: the input rate is the model's, not the caller's.
        target = 8000 if fmt in _G711 else min(max(rate, MIN_RATE), MAX_RATE)
    else:
        target = out_rate
    if fmt in _CODEC_RATES:
        target = _nearest(target, _CODEC_RATES[fmt])
    return target


def resample(pcm: bytes, rate_in: int, rate_out: int) -> bytes:
    """Resample a whole int16 mono PCM clip with soxr; identity when rates match."""
    if rate_in == rate_out or not pcm:
        return pcm
    samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2")
    return soxr.resample(samples, rate_in, rate_out).astype("<i2").tobytes()


def duration_seconds(pcm: bytes, rate: int) -> float:
    """Length in seconds of int16 mono PCM at ``rate``."""
    return (len(pcm) // 2) / rate


def _wav_header(rate: int, data_size: int) -> bytes:
    # A streamed header saturates the RIFF size too, as readers check both.
    riff_size = _WAV_UNKNOWN if data_size == _WAV_UNKNOWN else 36 + data_size
    return b"RIFF" + struct.pack("<I", riff_size) + b"WAVE" + b"fmt " + struct.pack(
        "<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16
    ) + b"data" + struct.pack("<I", data_size)


class _Sink:
    """Write-only file object: PyAV sees no seek/tell, so muxers treat it as a pipe."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        """Collect bytes the muxer produced."""
        self._chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        """Return and forget everything written so far."""
        out = b"".join(self._chunks)
        self._chunks.clear()
        return out


class _Muxer:
    """One PyAV output container encoding int16 mono frames as they arrive."""

    def __init__(self, fmt: str, rate: int, *, seekable: bool) -> None:
        muxer, codec, bit_rate = _MUXED[fmt]
        self.sink: _Sink | io.BytesIO = io.BytesIO() if seekable else _Sink()
        options: dict[str, str] = {}
        if not seekable:
            # Without this, avio holds output in a 32 KiB buffer: seconds of
            # speech-rate mp3 before the client hears anything.
            options["flush_packets"] = "1"
        if fmt == "opus":
            # Ogg pages default to ~1 s; 100 ms keeps streamed Opus responsive.
            options["page_duration"] = "100000"
        self.container = av.open(self.sink, "w", format=muxer, container_options=options)
        self.stream = self.container.add_stream(codec, rate=rate)
        self.stream.layout = "mono"
        if bit_rate is not None:
            self.stream.bit_rate = bit_rate
        self.rate = rate
        self.pts = 0

    def _mux(self, frame: av.AudioFrame | None) -> None:
        # PyAV re-chunks to the codec's frame_size and converts sample format.
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def feed(self, samples: np.ndarray) -> None:
        """Encode and mux int16 samples."""
        if samples.size == 0:
            return
        frame = av.AudioFrame.from_ndarray(
            samples.reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = self.rate
        frame.pts = self.pts
        self.pts += samples.size
        self._mux(frame)

    def close(self) -> None:
        """Drain the encoder and write the trailer."""
        self._mux(None)
        self.container.close()

    def take(self) -> bytes:
        """Bytes the muxer has written since the last call (streaming sink only)."""
        return self.sink.take() if isinstance(self.sink, _Sink) else b""


class StreamEncoder:
    """Incrementally encode int16 mono PCM into one continuous stream of ``fmt``.

    ``feed()`` returns whatever encoded bytes exist so far (possibly ``b""``),
    ``close()`` the remainder; their concatenation is one valid file/stream.
    """

    def __init__(
        self, fmt: str, rate: int, *, out_rate: int | None = None, _seekable: bool = False
    ) -> None:
        self.fmt = fmt
        self.rate = rate
        self.out_rate = _output_rate(fmt, rate, out_rate)
        self._closed = False
        self._carry = b""  # an odd trailing byte split across feeds
        self._resampler = (
            soxr.ResampleStream(rate, self.out_rate, 1, dtype="int16")
            if rate != self.out_rate
            else None
        )
        self._muxer = _Muxer(fmt, self.out_rate, seekable=_seekable) if fmt in _MUXED else None
        self._g711 = None
        if fmt in _G711:
            self._g711 = av.CodecContext.create(_G711[fmt], "w")
            self._g711.sample_rate = self.out_rate
            self._g711.layout = "mono"
            self._g711.format = "s16"
        self._pts = 0
        self._header = _wav_header(self.out_rate, _WAV_UNKNOWN) if fmt == "wav" else b""

    def _samples(self, pcm: bytes, last: bool) -> np.ndarray:
        data = self._carry + pcm
        cut = len(data) // 2 * 2
        self._carry = data[cut:]
        samples = np.frombuffer(data[:cut], dtype="<i2")
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples, last=last)
        return samples.astype("<i2", copy=False)

    def _encode(self, samples: np.ndarray) -> bytes:
        if self._muxer is not None:
            self._muxer.feed(samples)
            return self._muxer.take()
        if self._g711 is not None:
            if samples.size == 0:
                return b""
            frame = av.AudioFrame.from_ndarray(
                samples.reshape(1, -1), format="s16", layout="mono"
            )
            frame.sample_rate = self.out_rate
            frame.pts = self._pts
            self._pts += samples.size
            return b"".join(bytes(p) for p in self._g711.encode(frame))
        return samples.tobytes()

    def feed(self, pcm: bytes) -> bytes:
        """Encode a chunk of int16 mono PCM; return the bytes ready now."""
        if self._closed:
            raise ValueError("StreamEncoder.feed() called after close()")
        out = self._header + self._encode(self._samples(pcm, last=False))
        self._header = b""
        return out

    def close(self) -> bytes:
        """Flush resampler, encoder and muxer; return the final bytes."""
        if self._closed:
            return b""
        self._closed = True
        out = self._header + self._encode(self._samples(b"", last=True))
        self._header = b""
        if self._muxer is not None:
            self._muxer.close()
            out += self._muxer.take()
        elif self._g711 is not None:
            out += b"".join(bytes(p) for p in self._g711.encode(None))
        return out

    def _whole_file(self) -> bytes:
        # Only meaningful for a closed, seekable (whole-clip) muxed encoder.
        if self._muxer is None or not isinstance(self._muxer.sink, io.BytesIO):
            raise RuntimeError("not a whole-clip muxed encoder")
        return self._muxer.sink.getvalue()


def encode(pcm: bytes, rate: int, fmt: str, *, out_rate: int | None = None) -> bytes:
    """Encode a whole int16 mono PCM clip at ``rate`` as a complete ``fmt`` file."""
    target = _output_rate(fmt, rate, out_rate)
    if fmt == "wav":
        body = resample(pcm, rate, target)
        return _wav_header(target, len(body)) + body
    if fmt in _MUXED:
        # A seekable sink lets the muxer back-patch totals (mp3 Xing frame,
        # FLAC STREAMINFO sample count) that a stream has to leave unknown.
        enc = StreamEncoder(fmt, rate, out_rate=out_rate, _seekable=True)
        enc.feed(pcm)
        enc.close()
        return enc._whole_file()
    enc = StreamEncoder(fmt, rate, out_rate=out_rate)
    return enc.feed(pcm) + enc.close()


def decode(data: bytes, rate: int = 16000, *, max_seconds: float = 600) -> np.ndarray:
    """Decode any common audio file to mono float32 in [-1, 1] at ``rate``.

    Raises ``ValueError`` if the input cannot be decoded, has no audio, or runs
    longer than ``max_seconds`` (checked while decoding, so a huge upload is
    cut off early instead of being decoded in full).
    """
    limit = int(max_seconds * rate)
    too_long = f"audio is longer than the {max_seconds:g} s limit"
    try:
        container = av.open(io.BytesIO(data), "r")
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise ValueError(f"audio could not be decoded: {exc}") from exc
    try:
        if not container.streams.audio:
            raise ValueError("audio could not be decoded: no audio stream found")
        stream = container.streams.audio[0]
        if stream.duration is not None and stream.time_base is not None:
            if float(stream.duration * stream.time_base) > max_seconds + 1:
                raise ValueError(too_long)
        resampler = av.audio.resampler.AudioResampler(format="flt", layout="mono", rate=rate)
        chunks: list[np.ndarray] = []
        total = 0

        def add(frames: list[av.AudioFrame]) -> None:
            nonlocal total
            for out in frames:
                arr = out.to_ndarray().reshape(-1)
                total += arr.size
                if total > limit:
                    raise ValueError(too_long)
                chunks.append(arr)

        try:
            for frame in container.decode(stream):
                add(resampler.resample(frame))
            add(resampler.resample(None))
        except av.FFmpegError as exc:
            if not chunks:
                raise ValueError(f"audio could not be decoded: {exc}") from exc
            # A damaged tail still leaves usable audio for transcription.
    finally:
        container.close()
    if not chunks:
        raise ValueError("audio could not be decoded: no audio samples found")
    return np.clip(np.concatenate(chunks), -1.0, 1.0).astype(np.float32, copy=False)
