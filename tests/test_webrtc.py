"""The Realtime protocol over WebRTC (OpenAI's shape) with an aiortc client: the microphone on
an audio track, events on the `oai-events` data channel, the reply on the server's track."""

from __future__ import annotations

import asyncio
import fractions
import json
import time

import aiohttp
import av
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription

from cadence.server import create_app
from conftest import word_error_rate
from servers import serving

RATE = 48000


class SpeechTrack(MediaStreamTrack):
    """A microphone that says a prepared clip at real time, then stays quiet."""

    kind = "audio"

    def __init__(self, pcm: np.ndarray):
        super().__init__()
        self._pcm, self._pos, self._t0 = pcm, 0, None

    async def recv(self) -> av.AudioFrame:
        n = RATE // 50
        self._t0 = self._t0 or time.monotonic()
        chunk = self._pcm[self._pos:self._pos + n]
        chunk = np.concatenate([chunk, np.zeros(n - len(chunk), dtype=np.int16)])
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = RATE, self._pos, fractions.Fraction(1, RATE)
        self._pos += n
        await asyncio.sleep(max(0.0, self._t0 + self._pos / RATE - time.monotonic()))
        return frame


async def test_a_spoken_turn_over_webrtc(nova_factory, speak):
    question = "What is the capital of France?"
    pcm = np.concatenate([np.zeros(RATE // 2, dtype=np.int16), speak(question, rate=RATE),
                          np.zeros(RATE * 30, dtype=np.int16)])
    events, done, errored, loudest = [], asyncio.Event(), asyncio.Event(), [0]
    async with serving(create_app(nova_factory)) as url:
        pc = RTCPeerConnection()
        pc.addTrack(SpeechTrack(pcm))
        channel = pc.createDataChannel("oai-events")

        @channel.on("message")
        def on_message(message):
            events.append(json.loads(message))
            if events[-1]["type"] == "response.done":
                done.set()
            if events[-1]["type"] == "error":
                errored.set()

        @pc.on("track")
        def on_track(track):
            async def listen():
                while True:
                    frame = await track.recv()
                    loudest[0] = max(loudest[0], int(np.abs(frame.to_ndarray()).max()))

            asyncio.ensure_future(listen()).add_done_callback(lambda task: task.exception())

        await pc.setLocalDescription(await pc.createOffer())
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{url}/v1/realtime/calls", data=pc.localDescription.sdp,
                                 headers={"Content-Type": "application/sdp"}) as response:
                assert response.status == 201 and response.content_type == "application/sdp"
                answer = await response.text()
            async with http.post(f"{url}/v1/realtime/calls", data="not sdp") as bad:
                assert bad.status == 400 and (await bad.json())["error"]["param"] == "sdp"
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        await asyncio.wait_for(done.wait(), 60)
        channel.send(json.dumps({"type": "input_audio_buffer.append", "audio": "AAAA", "event_id": "ev-1"}))
        await asyncio.wait_for(errored.wait(), 10)
        await pc.close()

    kinds = [e["type"] for e in events]
    assert kinds[0] == "session.created"
    transcript = next(e["transcript"] for e in events if e["type"].endswith("transcription.completed"))
    assert word_error_rate(question, transcript) <= 0.2, transcript
    assert "output_audio_buffer.started" in kinds and "response.output_audio.delta" not in kinds
    final = next(e for e in events if e["type"] == "response.done")["response"]
    assert final["status"] == "completed" and final["output"][0]["content"][0]["transcript"].strip()
    assert loudest[0] > 1000, "the reply track carried no speech"
    error = next(e for e in events if e["type"] == "error")["error"]
    assert error["code"] == "invalid_state" and error["event_id"] == "ev-1"  # audio belongs on the track


async def test_an_offer_that_is_not_one_is_a_400_and_a_huge_body_a_413(nova_factory):
    async with serving(create_app(nova_factory)) as base, aiohttp.ClientSession() as http:
        for body, content_type in [("[1, 2]", "application/json"), ("{not json", "application/json"),
                                   ('{"sdp": 5}', "application/json"), ("hello", "application/sdp")]:
            async with http.post(f"{base}/v1/realtime/calls", data=body, headers={"Content-Type": content_type}) as r:
                error = (await r.json())["error"]
                assert r.status == 400 and error["code"] == "invalid_sdp" and error["param"] == "sdp", (body, error)
        huge = "v=0\r\n" + "a=x-padding:" + "x" * 200_000 + "\r\n"
        async with http.post(f"{base}/v1/realtime/calls", data=huge, headers={"Content-Type": "application/sdp"}) as r:
            error = (await r.json())["error"]
            assert r.status == 413 and error["code"] == "offer_too_large" and error["param"] == "sdp", error
        health = await (await http.get(f"{base}/healthz")).json()
        assert health["sessions"] == 0  # none of them took a session slot


async def test_an_answered_offer_whose_peer_never_connects_gives_its_slot_back(nova_factory, monkeypatch):
    from cadence.transports.realtime import webrtc

    monkeypatch.setattr(webrtc, "CONNECT_TIMEOUT_S", 1.0)
    async with serving(create_app(nova_factory)) as base, aiohttp.ClientSession() as http:
        pc = RTCPeerConnection()
        pc.createDataChannel("oai-events")
        await pc.setLocalDescription(await pc.createOffer())
        async with http.post(f"{base}/v1/realtime/calls", data=pc.localDescription.sdp,
                             headers={"Content-Type": "application/sdp"}) as response:
            assert response.status == 201
        await pc.close()  # the answer is never applied: no ICE, no connection
        assert (await (await http.get(f"{base}/healthz")).json())["sessions"] == 1
        for _ in range(50):
            await asyncio.sleep(0.1)
            if (await (await http.get(f"{base}/healthz")).json())["sessions"] == 0:
                break
        assert (await (await http.get(f"{base}/healthz")).json())["sessions"] == 0  # not held for a minute
