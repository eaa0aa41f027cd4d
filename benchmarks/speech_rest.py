"""Speech REST on the embedded Piper voice: time to first byte and real-time factor per encoding.

For every encoding, three ways of asking: Inworld's whole clip (``/tts/v1/voice``), Inworld's
stream (``/tts/v1/voice:stream``, NDJSON) and OpenAI's ``/v1/audio/speech`` (audio streamed
as it is made); each at concurrency 1 and 4. Prints one JSON line per case with the median
time to first byte (the first NDJSON line, the first audio byte, or the whole body), the
median wall time and the real-time factor (wall time / seconds of audio, lower is faster).

    python benchmarks/speech_rest.py --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import statistics
import sys
import time
from pathlib import Path

import aiohttp
import av

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from servers import serving  # noqa: E402

CONFIG = "pipeline:\n  - type: tts\n"
TEXT = ("Well {n}, that is a lovely question, and I have been thinking about it all evening. The harbour lights"
        " came on one by one while the boats drifted home. I think we should walk there tomorrow.")
_count = iter(range(10**9))


def text() -> str:
    """The text with a number of its own, so no request is served from the short-phrase cache."""
    return TEXT.format(n=next(_count))
INWORLD = {"LINEAR16": "wav", "MP3": "mp3", "OGG_OPUS": "ogg", "MULAW": None, "ALAW": None, "FLAC": "flac"}
OPENAI = ["wav", "pcm", "mp3", "opus", "aac", "flac"]


def seconds_of(data: bytes, fmt: str | None, rate: int) -> float:
    """Duration of encoded audio, decoded by FFmpeg (raw formats: by byte count)."""
    if fmt is None:  # headerless 8-bit G.711
        return len(data) / rate
    if fmt == "pcm":
        return len(data) / 2 / rate
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        return sum(frame.samples for frame in container.decode(stream)) / stream.rate


async def inworld(session: aiohttp.ClientSession, base: str, encoding: str, stream: bool) -> tuple[float, float, float]:
    body = {"text": text(), "audioConfig": {"audioEncoding": encoding, "sampleRateHertz": 16000}}
    start = time.perf_counter()
    first = None
    audio = 0.0
    async with session.post(f"{base}/tts/v1/voice{':stream' if stream else ''}", json=body) as reply:
        reply.raise_for_status()
        if stream:
            async for line in reply.content:
                first = first or time.perf_counter()
                chunk = json.loads(line)["result"]["audioContent"]
                audio += seconds_of(base64.b64decode(chunk), INWORLD[encoding], 16000)
        else:
            chunk = (await reply.json())["audioContent"]
            first = time.perf_counter()
            audio = seconds_of(base64.b64decode(chunk), INWORLD[encoding], 16000)
    end = time.perf_counter()
    return first - start, end - start, audio


async def openai_speech(session: aiohttp.ClientSession, base: str, fmt: str) -> tuple[float, float, float]:
    body = {"model": "tts-1", "voice": "alloy", "input": text(), "response_format": fmt}
    start = time.perf_counter()
    first = None
    data = b""
    async with session.post(f"{base}/v1/audio/speech", json=body) as reply:
        reply.raise_for_status()
        async for chunk in reply.content.iter_any():
            first = first or time.perf_counter()
            data += chunk
    end = time.perf_counter()
    return first - start, end - start, seconds_of(data, fmt, 24000)


async def case(base: str, label: str, call, concurrency: int, rounds: int) -> None:
    results = []
    async with aiohttp.ClientSession() as session:
        await call(session)  # warm: the voice loads once
        for _ in range(rounds):
            results += await asyncio.gather(*(call(session) for _ in range(concurrency)))
    ttfb = statistics.median(r[0] for r in results)
    wall = statistics.median(r[1] for r in results)
    rtf = statistics.median(r[1] / r[2] for r in results)
    print(json.dumps({"case": label, "concurrency": concurrency, "requests": len(results),
                      "ttfb_ms": round(ttfb * 1000), "wall_ms": round(wall * 1000),
                      "audio_s": round(results[0][2], 2), "rtf": round(rtf, 3)}), flush=True)


async def main(rounds: int, concurrencies: list[int]) -> None:
    from cadence.config import load_config_text, validate
    from cadence.models import ModelStore
    from cadence.pipelines.builder import PipelineFactory
    from cadence.server import create_app

    factory = PipelineFactory(validate(load_config_text(CONFIG)), ModelStore())
    async with serving(create_app(factory)) as base:
        for concurrency in concurrencies:
            for encoding in INWORLD:
                for stream in (False, True):
                    label = f"inworld {'stream' if stream else 'whole'} {encoding}"
                    await case(base, label, lambda s, e=encoding, st=stream: inworld(s, base, e, st),
                               concurrency, rounds)
            for fmt in OPENAI:
                await case(base, f"openai stream {fmt}", lambda s, f=fmt: openai_speech(s, base, f),
                           concurrency, rounds)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds per case (each round: `concurrency` requests)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.concurrency))
