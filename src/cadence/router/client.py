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


SystemPrompt = Callable[[str], str]


class _Completions:
    def __init__(self, router: Router, user: str | None, system_prompt: SystemPrompt | None):
        self._router = router
        self._user = user
        self._system_prompt = system_prompt

    async def create(self, **params: Any) -> AsyncIterator[ChatCompletionChunk]:
        if self._user and not params.get("user"):
            params["user"] = self._user
        if self._system_prompt is not None:
            params["messages"] = _with_system(list(params.get("messages") or []), self._system_prompt)
        return self._router.stream(params)


def _with_system(messages: list[dict[str, Any]], system_prompt: SystemPrompt) -> list[dict[str, Any]]:
    if messages and messages[0].get("role") == "system" and isinstance(messages[0].get("content"), str):
        return [{**messages[0], "content": system_prompt(messages[0]["content"])}, *messages[1:]]
    extra = system_prompt("")
    return [{"role": "system", "content": extra}, *messages] if extra else messages


class _Chat:
    def __init__(self, router: Router, user: str | None, system_prompt: SystemPrompt | None):
        self.completions = _Completions(router, user, system_prompt)


class RouterClient:
    """The part of ``AsyncOpenAI``'s surface pipecat uses: ``chat.completions.create``.

    ``system_prompt`` rewrites the system message of each request (persona → persona and
    memory)."""

    def __init__(self, router: Router, user: str | None = None, system_prompt: SystemPrompt | None = None):
        self.chat = _Chat(router, user, system_prompt)

    async def close(self) -> None:
        """Nothing to release: the router outlives every session."""
