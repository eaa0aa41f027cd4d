"""The pipecat worker that runs one session's pipeline, its observers spared the audio.

pipecat tells every observer about every frame at every processor (a ``FrameProcessed``
per processor, a ``FramePushed`` per hop), each through an asyncio queue and a task of the
observer's own. For the user's audio, 50 frames a second per session, that was some thirty
queue hand-offs per 20 ms chunk, most of a listening session's cost, and no observer here
reads those frames. ``AudioBlindWorkerObserver`` drops them before the queues unless an
observer sets ``hears_input_audio``.
"""

from __future__ import annotations

from typing import Any

from pipecat.frames.frames import InputAudioRawFrame
from pipecat.observers.base_observer import FrameProcessed, FramePushed
from pipecat.pipeline.worker import PipelineWorker
from pipecat.pipeline.worker_observer import Proxy, WorkerObserver


class AudioBlindWorkerObserver(WorkerObserver):
    """pipecat's WorkerObserver, passing the user's audio frames only to observers that ask."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._hearing_proxies: list[Proxy] | None = None  # worked out once per change of observers, not per frame

    def _hearing(self) -> list[Proxy]:
        if self._hearing_proxies is None:
            self._hearing_proxies = [proxy for observer, proxy in (self._proxies or {}).items()
                                     if getattr(observer, "hears_input_audio", False)]
        return self._hearing_proxies

    def add_observer(self, observer):
        super().add_observer(observer)
        self._hearing_proxies = None

    async def remove_observer(self, observer):
        await super().remove_observer(observer)
        self._hearing_proxies = None

    async def setup(self, task_manager):
        await super().setup(task_manager)
        self._hearing_proxies = None

    async def on_process_frame(self, data: FrameProcessed):
        if not isinstance(data.frame, InputAudioRawFrame):
            await super().on_process_frame(data)
            return
        for proxy in self._hearing():
            await proxy.queue.put(data)

    async def on_push_frame(self, data: FramePushed):
        if not isinstance(data.frame, InputAudioRawFrame):
            await super().on_push_frame(data)
            return
        if hearing := self._hearing():  # as pipecat's: a repeated push only to those wanting every one
            data.first_push = data.frame.id not in self._frames_pushed
            if data.first_push:
                self._frames_pushed[data.frame.id] = data.frame
            for proxy in hearing:
                if data.first_push or proxy.observer.observe_every_push:
                    await proxy.queue.put(data)


class SessionWorker(PipelineWorker):
    """A PipelineWorker whose observers go through ``AudioBlindWorkerObserver``.

    pipecat builds its WorkerObserver inside ``__init__`` with no way to pass another, so it
    is replaced right after, with the same observers, before anything has set it up.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._observer = AudioBlindWorkerObserver(observers=self._observer._observers)
