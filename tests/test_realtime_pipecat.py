"""pipecat's own OpenAIRealtimeLLMService, pointed at Cadence, holds a spoken conversation."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import numpy as np
from pipecat.frames.frames import (
    EndFrame,
    InputAudioRawFrame,
    LLMFullResponseEndFrame,
    TTSAudioRawFrame,
    TTSTextFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.services.openai.realtime.llm import OpenAIRealtimeLLMService
from pipecat.workers.runner import WorkerRunner


RATE = 24000


async def wait_for_session(url: str, timeout: float = 30) -> None:
    """Until the server reports a live Realtime session (its /healthz counts them)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        health = await asyncio.to_thread(lambda: json.load(urllib.request.urlopen(f"{url}/healthz", timeout=5)))
        if health.get("sessions", 0) >= 1:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no Realtime session reached {url} within {timeout}s")


class Collector(FrameProcessor):
    """Collects what the realtime service produced, one entry per reply."""

    def __init__(self):
        super().__init__()
        self.replies: list[dict] = [{"text": "", "audio": 0}]
        self.reply_done = asyncio.Event()

    async def process_frame(self, frame, direction):
        await super().process_frame(frame, direction)
        if isinstance(frame, TTSAudioRawFrame):
            self.replies[-1]["audio"] += len(frame.audio)
        elif isinstance(frame, TTSTextFrame):
            self.replies[-1]["text"] += frame.text
        elif isinstance(frame, LLMFullResponseEndFrame):
            self.replies.append({"text": "", "audio": 0})
            self.reply_done.set()
        await self.push_frame(frame, direction)

    def spoken(self) -> list[dict]:
        """Finished replies with a transcript and at least 0.5 s of speech (a reply cut short
        by the next question may have audio but no transcript yet)."""
        return [r for r in self.replies[:-1] if r["text"].strip() and r["audio"] > RATE * 2 // 2]

    async def until_spoken(self, count: int) -> None:
        while len(self.spoken()) < count:
            self.reply_done.clear()
            await self.reply_done.wait()


async def test_pipecat_realtime_service_holds_a_conversation(nova_server, speak):
    url = nova_server  # `run-pipeline configs/nova.yaml`, as a user starts it
    llm = OpenAIRealtimeLLMService(api_key="unused", base_url=url.replace("http://", "ws://") + "/v1/realtime")
    context = LLMContextAggregatorPair(LLMContext())
    collector = Collector()
    worker = PipelineWorker(
        Pipeline([context.user(), llm, collector, context.assistant()]),
        params=PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE),
        idle_timeout_secs=None, enable_rtvi=False,
    )
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    running = asyncio.create_task(runner.run())
    await wait_for_session(url)  # the service has connected before audio flows
    questions = ("Hello Nova, how are you today?", "What do you like to do for fun?")
    for asked, question in enumerate(questions, start=1):
        pcm = np.concatenate([speak(question, rate=RATE), np.zeros(RATE * 2, dtype=np.int16)]).tobytes()
        for i in range(0, len(pcm), RATE // 25):
            await worker.queue_frame(InputAudioRawFrame(pcm[i:i + RATE // 25], sample_rate=RATE, num_channels=1))
            await asyncio.sleep(0.02)
        # Until this question has its spoken reply. (After the first turn pipecat also seeds its
        # context into the session as a JSON user message and asks for a response; that one may
        # end, cut short by the next question, before the question's own reply does.)
        await asyncio.wait_for(collector.until_spoken(asked), 90)
    await worker.queue_frame(EndFrame())
    await asyncio.wait_for(running, 30)
    replies = [r for r in collector.replies if r["text"] or r["audio"]]
    assert len(collector.spoken()) >= len(questions), replies
    assert not any("<|" in r["text"] for r in replies)
