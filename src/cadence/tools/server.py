"""Tools the server runs itself, declared in the YAML's ``tools:`` section.

A Python callable from the user's code or a plugin (``function: module:name``): its JSON schema
comes from its type hints (through pydantic) unless the YAML gives ``parameters``, its
description from its docstring unless given. The model's arguments are validated against
the same model; the call runs off the event loop when it is a plain function, under
``timeout_s``. Whatever goes wrong (bad arguments, an exception, a timeout) becomes the
result the model reads, ``"the tool failed: …"``: a tool never ends a session. Each call's
result is shown to Realtime clients as a ``function_call_output`` item, and the model
answers it at once. MCP servers (``mcp:``) are in ``tools/mcp.py``.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable
from typing import Any

from loguru import logger
from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pydantic import ValidationError

from cadence.tools.client import inline_refs
from cadence.tools.spec import MCPTool, PythonTool, arguments_model, resolve


class PythonToolRunner:
    """One declared Python tool: its schema, and the handler pipecat calls."""

    def __init__(self, name: str, spec: PythonTool):
        self.name = name
        self.spec = spec
        self.fn = resolve(spec.function)
        self.model = arguments_model(self.fn)

    def schema(self) -> FunctionSchema:
        """The tool as the model sees it, its handler attached."""
        parameters = inline_refs(self.spec.parameters or self.model.model_json_schema())
        doc = (inspect.getdoc(self.fn) or "").strip().split("\n\n")[0]
        return FunctionSchema(name=self.name, description=self.spec.description or doc,
                              properties=parameters.get("properties") or {}, required=parameters.get("required") or [],
                              handler=self.handle)

    async def run(self, arguments: dict[str, Any]) -> Any:
        """The result, or ``"the tool failed: …"``."""
        try:
            checked = self.model.model_validate(arguments or {}) if self.spec.parameters is None else None
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False))
            return f"the tool failed: bad arguments ({problems})"
        kwargs = {k: getattr(checked, k) for k in type(checked).model_fields} if checked is not None else arguments
        try:
            if inspect.iscoroutinefunction(self.fn):
                result = await asyncio.wait_for(self.fn(**kwargs), self.spec.timeout_s)
            else:
                result = await asyncio.wait_for(asyncio.to_thread(self.fn, **kwargs), self.spec.timeout_s)
        except TimeoutError:
            logger.warning(f"tools: {self.name} did not answer within {self.spec.timeout_s} s")
            return f"the tool failed: it did not answer within {self.spec.timeout_s:g} s"
        except Exception as exc:  # the model reads what went wrong; the session goes on
            logger.warning(f"tools: {self.name} raised {type(exc).__name__}")  # not its arguments: user data
            return f"the tool failed: {type(exc).__name__}: {exc}"
        return tool_result(result)

    async def handle(self, params: Any) -> None:
        if (chained := calls_since_user(params.context)) >= MAX_CHAINED_CALLS:
            await chain_ended(params, chained)
            return
        await params.result_callback(await self.run(dict(params.arguments or {})))


MAX_CHAINED_CALLS = 8  # server-run calls in a row before the model is told to answer instead


async def chain_ended(params: Any, chained: int) -> None:
    """The cap: a result that says so, and no new run of the model (a model made to call,
    tool_choice required, would call again on every run)."""
    from pipecat.frames.frames import FunctionCallResultProperties

    logger.warning(f"tools: {chained} server-run calls in a row; the chain ends here")
    await params.result_callback(f"the tool failed: {chained} tool calls in a row since the user last spoke",
                                 properties=FunctionCallResultProperties(run_llm=False))


def calls_since_user(context: Any) -> int:
    """Tool results in ``context`` (pipecat's LLMContext) since the user's last message."""
    messages = context.get_messages() if context is not None else []
    count = 0
    for message in reversed(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role == "user":
            break
        count += role == "tool"
    return count


def tool_result(value: Any) -> Any:
    """A tool's return value as pipecat writes a result into the context: JSON-safe (a datetime
    as its text), and never falsy, which pipecat would take for no result and not answer."""
    if value is None or value == "":
        return "done"
    safe = json.loads(json.dumps(value, ensure_ascii=False, default=str))
    return safe if safe else json.dumps(safe)  # 0, false, [] and {} as their JSON text


class ServerTools:
    """The config's server-run tools (one per process; each session advertises them)."""

    def __init__(self, entries: dict[str, PythonTool | MCPTool]):
        self.python = {name: PythonToolRunner(name, e) for name, e in entries.items() if isinstance(e, PythonTool)}
        self.mcp = {name: e for name, e in entries.items() if isinstance(e, MCPTool)}

    @property
    def names(self) -> set[str]:
        """The Python tools' names (an MCP server's come from the server)."""
        return set(self.python)

    def schemas(self) -> list[FunctionSchema]:
        """The Python tools' schemas, handlers attached."""
        return [runner.schema() for runner in self.python.values()]
