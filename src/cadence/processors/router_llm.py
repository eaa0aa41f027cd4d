"""pipecat's OpenAILLMService running on Cadence's in-process router."""

from __future__ import annotations

from typing import Any

from pipecat.frames.frames import Frame, LLMContextFrame, StartFrame
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.openai.llm import OpenAILLMService

from cadence.frames import ReplyRequestedFrame
from cadence.processors.context_window import ContextWindow
from cadence.router import Router, RouterClient


class RouterLLMService(OpenAILLMService):
    """OpenAILLMService that sends requests to Cadence's router instead of over HTTP.

    The router speaks the OpenAI chat-completions shape, so pipecat's own service does
    the context conversion, streaming, usage and metrics; only the client is swapped.
    With a ``window`` (the context stage's), every request is first fitted to the model's
    window and its system prompt carries the rolling summary after the persona.
    """

    def __init__(self, *, router: Router, user: str | None = None, window: ContextWindow | None = None,
                 **kwargs: Any):
        self._window = window
        self._router_client = RouterClient(router, user=user, shape=window.shape if window else None)
        super().__init__(api_key="in-process", **kwargs)

    def create_client(self, *args: Any, **kwargs: Any) -> Any:
        return self._router_client

    async def cleanup(self):
        await super().cleanup()
        if self._window is not None:  # the session is over: no summaries or prefills for it any more
            await self._window.finish()

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        if isinstance(frame, StartFrame) and self._window is not None:
            # The user's memory is loaded before the StartFrame goes on: the session has
            # started only once it is in.
            settings = self.settings
            await self._window.start(model=settings.model, persona=settings.system_instruction or "",
                                     max_tokens=settings.max_tokens or 256)
        if isinstance(frame, LLMContextFrame) and not frame.speculation:
            await self.push_frame(ReplyRequestedFrame())
        if isinstance(frame, LLMContextFrame) and self._window is not None:
            settings = self.settings
            await self._window.prepare(frame.context)
            fit = self._window.fit_provisional if frame.speculation else self._window.fit
            fit(frame.context, model=settings.model, persona=settings.system_instruction or "",
                max_tokens=settings.max_tokens or 256)
        await super().process_frame(frame, direction)
