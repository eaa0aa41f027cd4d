"""What every backend replica offers the router, and how it reports failure."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import time

from openai.types.chat import ChatCompletionChunk
from openai.types.chat.chat_completion_chunk import Choice, ChoiceDelta
from openai.types.completion_usage import CompletionUsage


def make_chunk(completion_id: str, model: str, delta: ChoiceDelta | None = None, finish: str | None = None,
               usage: CompletionUsage | None = None, **extra: Any) -> ChatCompletionChunk:
    """One OpenAI stream chunk: a delta (and finish reason), or no choices and the usage."""
    choices = [] if delta is None else [Choice(index=0, delta=delta, finish_reason=finish)]
    return ChatCompletionChunk(id=completion_id, object="chat.completion.chunk", created=int(time.time()),
                               model=model, choices=choices, usage=usage, **extra)


class BackendError(Exception):
    """A replica failed. ``kind`` names how (e.g. ``http_503``); ``retryable`` says whether
    the next model may succeed where this one failed (a 400 would fail everywhere);
    ``retry_after`` is a 429's ``Retry-After`` in seconds, when the replica sent one."""

    def __init__(self, kind: str, message: str, *, retryable: bool = True, status: int = 502,
                 retry_after: float | None = None):
        super().__init__(message)
        self.kind = kind
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class ChatRequest:
    """One attempt's request: the messages, sampling params, and any reply already delivered.

    ``continuation`` is the text a failed attempt already streamed to the listener; the
    backend continues the reply after it instead of starting over.
    """

    messages: list[dict[str, Any]]
    params: dict[str, Any] = field(default_factory=dict)
    continuation: str = ""


class Backend(Protocol):
    """One replica of one provider."""

    replica: str

    def stream(self, model: str, request: ChatRequest) -> AsyncIterator[ChatCompletionChunk]:
        """Stream the completion as OpenAI chunks, the usage chunk last."""
        ...
