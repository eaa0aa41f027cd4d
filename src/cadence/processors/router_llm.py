"""pipecat's OpenAILLMService running on Cadence's in-process router."""

from __future__ import annotations

from typing import Any

from pipecat.services.openai.llm import OpenAILLMService

from cadence.router import Router, RouterClient


class RouterLLMService(OpenAILLMService):
    """OpenAILLMService that sends requests to Cadence's router instead of over HTTP.

    The router speaks the OpenAI chat-completions shape, so pipecat's own service does
    the context conversion, streaming, usage and metrics; only the client is swapped.
    """

    def __init__(self, *, router: Router, user: str | None = None, **kwargs: Any):
        self._router_client = RouterClient(router, user=user)
        super().__init__(api_key="in-process", **kwargs)

    def create_client(self, *args: Any, **kwargs: Any) -> Any:
        return self._router_client
