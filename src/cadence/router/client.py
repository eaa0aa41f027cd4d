"""An in-process stand-in for ``openai.AsyncOpenAI`` that sends requests to the router.

pipecat's ``OpenAILLMService`` only calls ``client.chat.completions.create(**params)``
and iterates the stream it returns; giving it this object lets the whole of pipecat's
OpenAI LLM service (context conversion, tools, metrics, usage) run on the router without
an HTTP hop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from openai.types.chat import ChatCompletionChunk

if TYPE_CHECKING:
    from cadence.router.router import Router


Shape = Callable[[list[dict[str, Any]], str | None], list[dict[str, Any]]]


class _Completions:
    def __init__(self, router: Router, user: str | None, shape: Shape | None):
        self._router = router
        self._user = user
        self._shape = shape

    async def create(self, **params: Any) -> AsyncIterator[ChatCompletionChunk]:
        if self._user and not params.get("user"):
            params["user"] = self._user
        if self._shape is not None:
            params["messages"] = self._shape(list(params.get("messages") or []), params.get("model"))
        return self._router.stream(params)


class _Chat:
    def __init__(self, router: Router, user: str | None, shape: Shape | None):
        self.completions = _Completions(router, user, shape)


class RouterClient:
    """The part of ``AsyncOpenAI``'s surface pipecat uses: ``chat.completions.create``.

    ``shape(messages, model)`` rewrites the messages of each request (e.g. persona → persona
    and memory)."""

    def __init__(self, router: Router, user: str | None = None, shape: Shape | None = None):
        self.chat = _Chat(router, user, shape)

    async def close(self) -> None:
        """Nothing to release: the router outlives every session."""
