"""A replica behind an OpenAI-compatible HTTP API (vLLM, llama.cpp server, OpenAI, Groq, ...)."""

from __future__ import annotations

import datetime
import email.utils
import math
from collections.abc import AsyncIterator
from typing import Any

import openai
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionChunk

from cadence.router.backends.base import BackendError, ChatRequest


class OpenAICompatibleBackend:
    """One base URL. The router does all retrying, so the SDK's own retries are off."""

    def __init__(self, base_url: str, *, api_key: str | None, timeout_s: float, continue_final_message: bool):
        self.replica = base_url
        self._continue_final_message = continue_final_message
        self._client = AsyncOpenAI(base_url=base_url, api_key=api_key or "unused", timeout=timeout_s, max_retries=0)

    async def stream(self, model: str, request: ChatRequest) -> AsyncIterator[ChatCompletionChunk]:
        body: dict[str, Any] = {**request.params, "model": model, "messages": request.messages, "stream": True}
        body["stream_options"] = {"include_usage": True}
        if request.continuation:
            body["messages"] = [*request.messages, {"role": "assistant", "content": request.continuation}]
            if self._continue_final_message:  # vLLM: extend the assistant message, no new turn
                body["extra_body"] = {"continue_final_message": True, "add_generation_prompt": False}
        try:
            stream = await self._client.chat.completions.create(**body)
        except openai.APIStatusError as exc:
            status = exc.status_code
            retryable = status == 429 or status >= 500 or status in (404, 408)
            retry_after = parse_retry_after(exc.response.headers.get("retry-after")) if status == 429 else None
            raise BackendError(f"http_{status}", _describe(exc), retryable=retryable, status=status,
                               retry_after=retry_after) from exc
        except openai.APITimeoutError as exc:
            raise BackendError("timeout", f"{self.replica}: request timed out") from exc
        except openai.APIConnectionError as exc:
            raise BackendError("connection_error", f"{self.replica}: {exc.__cause__ or exc}") from exc
        try:
            async with stream:
                async for chunk in stream:
                    yield chunk
        except Exception as exc:  # the transport's own errors (e.g. a truncated chunked body)
            raise BackendError("stream_broken", f"{self.replica}: stream ended early: {exc}") from exc

    async def close(self) -> None:
        """Close the HTTP connection pool."""
        await self._client.close()


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: delay-seconds or an HTTP date (RFC 9110 10.2.3);
    None when absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value)
        return max(0.0, seconds) if math.isfinite(seconds) else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds())


def _describe(exc: openai.APIStatusError) -> str:
    try:
        message = exc.response.json().get("error", {}).get("message")
    except Exception:
        message = None
    return f"HTTP {exc.status_code}: {message or exc.message}"
