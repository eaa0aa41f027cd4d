"""``llm``: the reply model, reached through Cadence's router (see ``router_llm``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from cadence.stages import BuildContext, ProcessorSpec, Spec, Stage


class LLMParams(Spec):
    """Params of the ``llm`` stage."""

    model: str = Field(
        "local/smollm2-135m-instruct", description="'provider/model', a provider from the router section."
    )
    temperature: float = Field(0.7, ge=0, le=2, description="Sampling temperature.")
    top_p: float = Field(0.95, gt=0, le=1, description="Nucleus sampling mass.")
    max_tokens: int = Field(80, ge=1, description="Longest reply in tokens (voice replies are short).")
    frequency_penalty: float = Field(
        0.5, ge=-2, le=2, description="Penalise tokens by how often they appeared (small models loop without it)."
    )
    presence_penalty: float = Field(0.5, ge=-2, le=2, description="Penalise tokens that appeared at all.")
    seed: int | None = Field(None, description="Sampling seed for repeatable replies (benchmarks, tests).")
    fallbacks: list[str] = Field(
        default_factory=list, description="'provider/model' names to fail over to, in order, if `model` fails."
    )


def build(params: LLMParams, context: BuildContext) -> Stage:
    """An OpenAILLMService whose client is the in-process router."""
    from pipecat.services.openai.llm import OpenAILLMService

    from cadence.processors.router_llm import RouterLLMService

    for name in (params.model, *params.fallbacks):
        context.router.check_model(name)

    settings: Any = OpenAILLMService.Settings(
        model=params.model,
        system_instruction=context.instructions,
        temperature=params.temperature,
        top_p=params.top_p,
        max_tokens=params.max_tokens,
        frequency_penalty=params.frequency_penalty,
        presence_penalty=params.presence_penalty,
        seed=params.seed,
        extra={"models": params.fallbacks} if params.fallbacks else {},
    )
    service = RouterLLMService(router=context.router, user=context.user_id, settings=settings,
                               window=context.roles.context_window)
    context.roles.llm = service
    return Stage(service)


def warm(params: LLMParams, context: BuildContext) -> None:
    """Load the model and prefill the session instructions once per process."""
    context.router.warm(params.model, [{"role": "system", "content": context.instructions}])


SPEC = ProcessorSpec("llm", LLMParams, build, "The reply LLM, through the router (llama.cpp in-process by default).",
                     warm=warm, hears_audio=False)
