"""Resolve ``provider/model`` to a backend and stream the chat completion from it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from openai import NotGiven, Omit
from openai.types.chat import ChatCompletionChunk

from cadence.errors import CadenceError, ConfigError
from cadence.models import ModelStore, resolve_model
from cadence.pipelines.schema import LlamaCppProvider, OpenAICompatibleProvider, RouterSection
from cadence.router.backends.llamacpp import GenerationParams, LlamaCppBackend


class RouterError(CadenceError):
    """A request the router cannot serve (unknown model, malformed messages, ...)."""

    def __init__(self, message: str, *, param: str | None = None, status: int = 400):
        super().__init__(message)
        self.param = param
        self.status = status


class Router:
    """Named providers from the config's ``router:`` section; models are ``provider/model``."""

    def __init__(self, section: RouterSection, store: ModelStore):
        self._section = section
        self._store = store
        self._openai_clients: dict[str, Any] = {}

    def models(self) -> list[str]:
        """Every ``provider/model`` name the router can serve without asking a remote."""
        names = []
        for name, provider in self._section.providers.items():
            if isinstance(provider, LlamaCppProvider):
                names.append(f"{name}/{provider.model}")
        return names

    def llamacpp(self, provider_name: str) -> LlamaCppBackend:
        """The shared llama.cpp backend of a provider, loading it on first use."""
        provider = self._section.providers[provider_name]
        assert isinstance(provider, LlamaCppProvider)
        path = resolve_model(provider.model, what=f"router.providers.{provider_name}.model")
        return self._store.get(
            ("llamacpp", str(path), provider.n_ctx, provider.n_threads),
            lambda: LlamaCppBackend(path, model_name=provider.model, n_ctx=provider.n_ctx, n_threads=provider.n_threads),
        )

    def check_model(self, model: str) -> None:
        """Raise ConfigError unless ``model`` names a configured provider."""
        try:
            self._resolve(model)
        except RouterError as exc:
            raise ConfigError(str(exc)) from exc

    def warm(self, model: str, messages: list[dict[str, Any]]) -> int:
        """Load the model behind ``model`` and prefill ``messages`` when it is in-process."""
        provider_name, provider, _ = self._resolve(model)
        if isinstance(provider, LlamaCppProvider):
            backend = self.llamacpp(provider_name)
            return backend.warm(messages) if provider.warm_prefix else 0
        return 0

    def _resolve(self, model: Any) -> tuple[str, LlamaCppProvider | OpenAICompatibleProvider, str]:
        if not isinstance(model, str) or "/" not in model:
            raise RouterError(
                f"model must be 'provider/model' (one of: {', '.join(self.models()) or 'none'}), got {model!r}",
                param="model",
            )
        provider_name, _, model_name = model.partition("/")
        provider = self._section.providers.get(provider_name)
        if provider is None:
            raise RouterError(
                f"unknown provider {provider_name!r} in model {model!r}; configured providers:"
                f" {', '.join(self._section.providers)}",
                param="model",
                status=404,
            )
        if isinstance(provider, LlamaCppProvider) and model_name != provider.model:
            raise RouterError(
                f"provider {provider_name!r} serves only {provider_name}/{provider.model}, not {model!r}",
                param="model",
                status=404,
            )
        return provider_name, provider, model_name

    def stream(self, params: dict[str, Any]) -> AsyncIterator[ChatCompletionChunk]:
        """Validate an OpenAI-style chat request and stream its chunks (usage last)."""
        params = {k: v for k, v in params.items() if not isinstance(v, (NotGiven, Omit)) and v is not None}
        provider_name, provider, model_name = self._resolve(params.get("model"))
        messages = params.get("messages")
        if not isinstance(messages, list) or not messages:
            raise RouterError("messages must be a non-empty list of {role, content} objects", param="messages")
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or "role" not in message:
                raise RouterError(f"messages[{i}] must be an object with a 'role'", param=f"messages[{i}]")
        if isinstance(provider, LlamaCppProvider):
            backend = self.llamacpp(provider_name)
            return backend.stream(messages, _generation_params(params))
        return self._stream_openai(provider_name, provider, model_name, params)

    async def _stream_openai(
        self, name: str, provider: OpenAICompatibleProvider, model_name: str, params: dict[str, Any]
    ) -> AsyncIterator[ChatCompletionChunk]:
        from openai import AsyncOpenAI

        client = self._openai_clients.get(name)
        if client is None:
            key = provider.api_key.get_secret_value() if provider.api_key else "unused"
            client = AsyncOpenAI(base_url=provider.base_url, api_key=key, timeout=provider.timeout_s)
            self._openai_clients[name] = client
        request = {**params, "model": model_name, "stream": True}
        request.setdefault("stream_options", {"include_usage": True})
        stream = await client.chat.completions.create(**request)
        async with stream:
            async for chunk in stream:
                yield chunk


def _generation_params(params: dict[str, Any]) -> GenerationParams:
    stop = params.get("stop") or ()
    defaults = GenerationParams()
    return GenerationParams(
        max_tokens=int(params.get("max_completion_tokens") or params.get("max_tokens") or defaults.max_tokens),
        temperature=float(params.get("temperature", defaults.temperature)),
        top_p=float(params.get("top_p", defaults.top_p)),
        stop=(stop,) if isinstance(stop, str) else tuple(stop),
        seed=params.get("seed"),
        frequency_penalty=float(params.get("frequency_penalty", 0.0)),
        presence_penalty=float(params.get("presence_penalty", 0.0)),
    )
