"""Audio on the wire (audio/pcm 24 kHz, audio/pcmu, audio/pcma) ↔ 16-bit PCM at 24 kHz."""

from __future__ import annotations

from pipecat.audio.utils import alaw_to_pcm, create_stream_resampler, pcm_to_alaw, pcm_to_ulaw, ulaw_to_pcm

from cadence.transports.realtime.protocol import ProtocolError

WIRE_RATE = 24000  # audio/pcm in the GA protocol is 24 kHz


class WireAudio:
    """Decodes client audio and encodes reply audio in the session's current formats."""

    def __init__(self) -> None:
        self._resample_in = create_stream_resampler()
        self._resample_out = create_stream_resampler()

    async def decode(self, audio: bytes, kind: str) -> bytes:
        """Client audio in ``kind`` → PCM at 24 kHz."""
        if kind == "audio/pcmu":
            return await ulaw_to_pcm(audio, 8000, WIRE_RATE, self._resample_in)
        if kind == "audio/pcma":
            return await alaw_to_pcm(audio, 8000, WIRE_RATE, self._resample_in)
        if len(audio) % 2:
            raise ProtocolError("invalid_audio", "audio/pcm must be 16-bit samples (an even number of bytes)",
                                param="audio")
        return audio

    async def encode(self, pcm: bytes, kind: str) -> bytes:
        """PCM at 24 kHz → reply audio in ``kind``."""
        if kind == "audio/pcmu":
            return await pcm_to_ulaw(pcm, WIRE_RATE, 8000, self._resample_out)
        if kind == "audio/pcma":
            return await pcm_to_alaw(pcm, WIRE_RATE, 8000, self._resample_out)
        return pcm
