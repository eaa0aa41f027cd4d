"""The LLM layer: resolves ``provider/model`` names to backends and streams chat completions.

Used in-process by the pipeline's ``llm`` stage (through ``RouterClient``, which looks
like the ``openai`` SDK's client to pipecat) and, later, served over HTTP as an
OpenAI-compatible API.
"""

from cadence.router.client import RouterClient
from cadence.router.router import Router, RouterError

__all__ = ["Router", "RouterClient", "RouterError"]
