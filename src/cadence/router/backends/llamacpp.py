"""An in-process llama.cpp model served as an OpenAI-style chat stream.

A ``Llama`` object is single-threaded and keeps the KV cache of the last prompt it
ran, so each backend owns one worker thread: requests queue on it, and a request whose
prompt starts like the previous one only prefills the new tail (the ~10x cheaper path
that makes a repeated system prompt affordable). The prompt is rendered with the
model's own chat template here, not inside llama-cpp-python, so that the number of
prompt tokens served from the cache can be reported (``cached_tokens``).
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loguru import logger
from openai.types.chat import ChatCompletionChunk
from openai.types.chat.chat_completion_chunk import ChoiceDelta, ChoiceDeltaToolCall
from openai.types.completion_usage import CompletionUsage, PromptTokensDetails

from cadence.router.backends.base import BackendError, ChatRequest, make_chunk
from cadence.router.backends.llamacpp_tools import offered_tools, spurious, template_message
from cadence.router.tool_calls import TextToolCalls, ToolCall, tool_names

# Chat-template control tokens a small model sometimes prints as text; never spoken.
_TEMPLATE_JUNK = re.compile(r"<\|[a-z_]+\|>|</?s>")
_DONE = object()
_SWITCH_TOKENS = 32


@dataclass(frozen=True)
class GenerationParams:
    """The sampling knobs of one chat request."""

    max_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 0.95
    stop: tuple[str, ...] = ()
    seed: int | None = None
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0

    @classmethod
    def from_request(cls, params: dict[str, Any]) -> GenerationParams:
        """Sampling params from an OpenAI-style request body."""
        stop = params.get("stop") or ()
        defaults = cls()
        return cls(
            max_tokens=int(params.get("max_completion_tokens") or params.get("max_tokens") or defaults.max_tokens),
            temperature=float(params.get("temperature", defaults.temperature)),
            top_p=float(params.get("top_p", defaults.top_p)),
            stop=(stop,) if isinstance(stop, str) else tuple(stop),
            seed=params.get("seed"),
            frequency_penalty=float(params.get("frequency_penalty", 0.0)),
            presence_penalty=float(params.get("presence_penalty", 0.0)),
        )


class LlamaCppBackend:
    """One llama.cpp context on a GGUF file, with its own worker thread."""

    def __init__(
        self,
        model_path: Path,
        *,
        model_name: str,
        replica: str = "0",
        n_ctx: int = 2048,
        n_threads: int | None = None,
        state_cache_mb: int = 0,
    ):
        from llama_cpp import Llama, LlamaRAMCache
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.model_name = model_name
        self.replica = replica
        # The GGUF is memory-mapped, so N replicas share one copy of the weights.
        # llama-cpp-python's own default is half the cores for generation; a reply's first
        # words come ~1.7x faster on all of them (benchmarks/turn_latency.py), as documented.
        threads = n_threads or os.cpu_count() or 1
        self._llm = Llama(model_path=str(model_path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                          verbose=False)
        template = self._llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise ValueError(f"{model_path} has no chat template; a chat backend needs an instruction-tuned model")
        # Token *text*, not detokenized bytes: special tokens detokenize to "" and an
        # empty stop string would end every reply before it starts.
        eos = self._llm._model.token_get_text(self._llm.token_eos())
        bos = self._llm._model.token_get_text(self._llm.token_bos())
        self._format = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        self.takes_tools = "tools" in template  # a template without a tools branch would drop them unseen
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"llama-{model_name}")
        # One llama.cpp context holds one conversation's KV cache. When a replica serves
        # several users, the conversation about to be overwritten is saved here and
        # restored when its user returns (LRU, bounded in bytes).
        self._states = LlamaRAMCache(capacity_bytes=state_cache_mb << 20) if state_cache_mb else None

    def render(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
               ) -> tuple[str, list[str]]:
        """The prompt text and the stop strings the chat template defines (its tools branch
        renders ``tools``; earlier calls' arguments go in as objects, as templates expect)."""
        result = self._format(messages=[template_message(m) for m in messages], tools=tools or None)
        stop = result.stop if isinstance(result.stop, list) else [result.stop]
        return result.prompt, [s for s in stop if s]

    def warm(self, messages: list[dict[str, Any]]) -> int:
        """Prefill ``messages`` (e.g. the system prompt) so the next request reuses its KV cache.

        Returns the number of tokens now cached. Blocks; call it at start-up.
        """
        prompt, _ = self.render(messages)
        tokens = self._tokenize(prompt)
        return self._worker.submit(self._prefill, tokens).result()

    def _prefill(self, tokens: list[int]) -> int:
        cached = self._switch_to(tokens)
        self._llm.n_tokens = cached
        self._llm.eval(tokens[cached:])
        return len(tokens)

    def count_tokens(self, messages: list[dict[str, Any]]) -> int:
        """Prompt tokens of ``messages`` rendered with the chat template, generation prompt included
        (tokenizing reads only the vocabulary, so it is safe beside a running generation)."""
        prompt, _ = self.render(messages)
        return len(self._tokenize(prompt))

    def _tokenize(self, prompt: str) -> list[int]:
        return self._llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)

    def _switch_to(self, tokens: list[int]) -> int:
        """Make the context hold the longest known prefix of ``tokens``; return its length."""
        cached = self._common_prefix(tokens)
        if self._states is None:
            return cached
        held = self._llm.n_tokens
        # The same user's next turn differs only in the last few tokens (end-of-turn markup);
        # another conversation loses much more: keep that one before it is overwritten.
        if held - cached > _SWITCH_TOKENS:
            self._states[tuple(self._llm._input_ids[:held].tolist())] = self._llm.save_state()
        key = self._states._find_longest_prefix_key(tuple(tokens))
        if key is not None and _prefix_len(key, tokens) > cached:
            self._llm.load_state(self._states[key])
            cached = self._common_prefix(tokens)
        return cached

    def _common_prefix(self, tokens: list[int]) -> int:
        n = _prefix_len(self._llm._input_ids[: self._llm.n_tokens], tokens)
        # llama.cpp needs at least one new token to produce logits for sampling.
        return min(n, len(tokens) - 1)

    async def stream(self, model: str, request: ChatRequest) -> AsyncIterator[ChatCompletionChunk]:
        """Stream a chat completion as OpenAI ``ChatCompletionChunk`` objects, usage last.

        With ``tool_choice`` auto, two guards for a small model: a reply that only repeats a
        call this turn already has the result of, or whose calls' required free-text
        arguments share no word with anything the user (or a tool) said (a weather lookup
        for "London" when the user only said they were tired), is made again without tools,
        continuing after the words already streamed."""
        tools = offered_tools(request.params)
        if tools and not self.takes_tools:  # the request's fault, not the replica's: a 400, no cooldown
            raise BackendError("tools_unsupported", f"{self.model_name}: its chat template has no tools branch, so"
                               " it cannot be offered tools", retryable=False, status=400)
        guarded = bool(tools) and request.params.get("tool_choice", "auto") == "auto"
        held: list[ChatCompletionChunk] = []
        spoken = ""
        # No tools offered, yet calls in the history (or tools declared, tool_choice none): a
        # small model may imitate one; it is read and dropped, never spoken.
        known = tool_names(request.params.get("tools")) + [
            c.get("function", {}).get("name", "") for m in request.messages for c in m.get("tool_calls") or []]
        async for chunk in self._generate(request, tools, read_calls=None if tools else [n for n in known if n]):
            delta = chunk.choices[0].delta if chunk.choices else None
            if delta is not None and delta.tool_calls and delta.tool_calls[0].function is not None:
                held.append(chunk)  # one chunk per call, the last one finishing: decided on the whole set
                if not chunk.choices[0].finish_reason:
                    continue
                calls = [c for h in held for c in h.choices[0].delta.tool_calls or []]
                if guarded and spurious(calls, tools, request.messages):
                    logger.info(f"tool calls: {[c.function.name for c in calls]} looked like a guess; answered without tools")
                    again = ChatRequest([*request.messages, _ANSWER_NOW], request.params, request.continuation + spoken)
                    async for retry in self._generate(again, [], read_calls=tool_names(tools)):
                        if retry.choices and retry.choices[0].delta.role is not None:
                            continue  # the role was sent already
                        yield retry
                    return
                for piece in held:
                    yield piece
                held = []
                continue
            spoken += (delta.content or "") if delta is not None else ""
            yield chunk

    async def _generate(self, request: ChatRequest, tools: list[dict[str, Any]], read_calls: list[str] | None = None
                        ) -> AsyncIterator[ChatCompletionChunk]:
        """One generation; ``read_calls``: no tools are offered, yet a call the model writes
        anyway (it has seen calls in the history) is read and dropped, never spoken."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        cancelled = threading.Event()
        params = GenerationParams.from_request(request.params)
        prompt, template_stop = self.render(request.messages, tools)
        calls = TextToolCalls(tool_names(tools) or read_calls or []) if tools or read_calls else None
        # A continuation resumes the assistant's reply exactly where the listener left it.
        prompt += request.continuation

        def emit(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the event loop is gone: nobody is listening any more
                cancelled.set()

        def work() -> None:
            try:
                tokens = self._tokenize(prompt)
                cached = self._switch_to(tokens)
                completion = 0  # llama.cpp streams one chunk per generated token
                for chunk in self._llm.create_completion(
                    tokens,
                    max_tokens=params.max_tokens,
                    temperature=params.temperature,
                    top_p=params.top_p,
                    stop=[*template_stop, *params.stop],
                    seed=params.seed,
                    frequency_penalty=params.frequency_penalty,
                    presence_penalty=params.presence_penalty,
                    stream=True,
                ):
                    if cancelled.is_set():
                        break
                    choice = chunk["choices"][0]
                    completion += 1 if choice["text"] else 0
                    emit((choice["text"], choice.get("finish_reason")))
                emit(CompletionUsage(
                    prompt_tokens=len(tokens),
                    completion_tokens=completion,
                    total_tokens=len(tokens) + completion,
                    prompt_tokens_details=PromptTokensDetails(cached_tokens=cached),
                ))
            except Exception as exc:  # surfaced to the awaiting coroutine
                emit(exc)
            finally:
                emit(_DONE)

        self._worker.submit(work)
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"

        def chunk(delta: ChoiceDelta | None = None, finish: str | None = None,
                  usage: CompletionUsage | None = None) -> ChatCompletionChunk:
            return make_chunk(completion_id, self.model_name, delta, finish, usage)

        try:
            yield chunk(ChoiceDelta(role="assistant", content=""))
            while True:
                item = await queue.get()
                if item is _DONE:
                    return
                if isinstance(item, Exception):
                    raise item
                if isinstance(item, CompletionUsage):
                    yield chunk(usage=item)
                    continue
                text, finish = item
                text = _TEMPLATE_JUNK.sub("", text)
                found: list[ToolCall] = []
                if calls is not None:
                    holding = calls.holding
                    text = calls.feed(text)
                    if calls.holding and not holding:  # a call is being written: the first token, for the router
                        yield chunk(ChoiceDelta(tool_calls=[ChoiceDeltaToolCall(index=0)]))
                    if finish:
                        tail, found = calls.finish()
                        text += tail
                        if found and not tools:
                            logger.info(f"tool calls: {len(found)} call(s) written where no tools were offered; dropped")
                            found = []
                if found:
                    if text:
                        yield chunk(ChoiceDelta(content=text))
                    for i, call in enumerate(found):  # one chunk per call: pipecat reads one call per delta
                        last = i == len(found) - 1
                        yield chunk(ChoiceDelta(tool_calls=[ChoiceDeltaToolCall.model_validate(call.wire(i))]),
                                    finish="tool_calls" if last else None)
                elif text or finish:
                    yield chunk(ChoiceDelta(content=text or None), finish=finish)
        finally:
            cancelled.set()

    def close(self) -> None:
        """Stop the worker thread once queued requests finish."""
        self._worker.shutdown(wait=False, cancel_futures=True)


# The retry of a spurious call: the words the model owes, without tools.
_ANSWER_NOW = {"role": "system", "content": "Answer the user now in plain words, using any tool results above."
               " Do not call a tool."}


def _prefix_len(a: Any, b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n
