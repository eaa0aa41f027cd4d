"""Tools the client runs: OpenAI Realtime's function tools, declared in ``session.tools``.

The model's call reaches the client as a ``function_call`` item; its result comes back as a
``function_call_output`` item. In between, the call is a pipecat function call left open:
pipecat's LLM service runs our handler for it, which keeps the call's result callback until
the client answers (``resolve``), and the context holds the call with an ``IN_PROGRESS``
result meanwhile, as pipecat's aggregator writes it. The result goes in without running the
model: OpenAI's protocol waits for the client's ``response.create``.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from loguru import logger
from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.frames.frames import FunctionCallResultProperties

MAX_PENDING = 32  # calls a session waits on the client for; the oldest is given up past this
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class ToolError(ValueError):
    """A tool declaration that cannot be used; ``param`` names the field (``tools[0].name``)."""

    def __init__(self, message: str, param: str):
        super().__init__(message)
        self.param = param


def function_schema(tool: Any, where: str, handler: Callable[..., Awaitable[None]] | None = None) -> FunctionSchema:
    """A Realtime function tool (``{type: "function", name, description, parameters}``) as
    pipecat's ``FunctionSchema``; ToolError naming the field for anything else."""
    if not isinstance(tool, dict):
        raise ToolError(f"{where} must be an object {{type, name, description, parameters}}", where)
    kind = tool.get("type", "function")
    if kind != "function":
        raise ToolError(f"{where}.type {kind!r} is not supported: only function tools (MCP servers are declared"
                        " in the YAML's tools: section)", f"{where}.type")
    name = tool.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ToolError(f"{where}.name must be 1-64 letters, digits, '_' or '-', got {name!r}", f"{where}.name")
    parameters = tool.get("parameters") or {"type": "object", "properties": {}}
    if not isinstance(parameters, dict) or parameters.get("type", "object") != "object" \
            or not isinstance(parameters.get("properties", {}), dict):
        raise ToolError(f"{where}.parameters must be a JSON schema of type object with properties",
                        f"{where}.parameters")
    required = parameters.get("required") or []
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise ToolError(f"{where}.parameters.required must be a list of property names",
                        f"{where}.parameters.required")
    description = tool.get("description") or ""
    if not isinstance(description, str):
        raise ToolError(f"{where}.description must be a string", f"{where}.description")
    parameters = inline_refs(parameters)
    return FunctionSchema(name=name, description=description, properties=parameters.get("properties") or {},
                          required=required, handler=handler)


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its local ``$ref``s (``#/$defs/X``, as pydantic writes an enum or a nested
    model) replaced by what they point at: only ``properties`` and ``required`` travel on to
    the model, so ``$defs`` would be lost and the refs left dangling."""
    defs = {**(schema.get("definitions") or {}), **(schema.get("$defs") or {})}

    def resolve(node: Any, depth: int = 0) -> Any:
        if depth > 16:  # a recursive model: cut off rather than loop
            return {}
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.rsplit("/", 1)[-1] in defs:
                return resolve({**defs[ref.rsplit("/", 1)[-1]], **{k: v for k, v in node.items() if k != "$ref"}},
                               depth + 1)
            return {k: resolve(v, depth) for k, v in node.items() if k not in ("$defs", "definitions")}
        if isinstance(node, list):
            return [resolve(v, depth) for v in node]
        return node

    return resolve(schema) if defs else schema


class ClientTools:
    """One session's client-run tools and the calls waiting on the client (bounded by ``MAX_PENDING``)."""

    def __init__(self) -> None:
        self._pending: OrderedDict[str, Callable[..., Awaitable[None]]] = OrderedDict()
        self._calls: OrderedDict[str, None] = OrderedDict()  # ids of calls made to the client (bounded)

    def schemas(self, tools: list[Any], where: str, reserved: set[str] = frozenset()) -> list[FunctionSchema]:
        """The declared tools as schemas whose handler waits for the client; ToolError on a bad
        one, or on one named like a tool the server runs (``reserved``)."""
        schemas = [function_schema(tool, f"{where}[{i}]", self._handle) for i, tool in enumerate(tools or [])]
        for i, schema in enumerate(schemas):
            if schema.name in reserved:
                raise ToolError(f"{where}[{i}].name: {schema.name!r} is a tool this server runs itself (the YAML's"
                                " tools:); give yours another name", f"{where}[{i}].name")
        names = [s.name for s in schemas]
        if len(set(names)) != len(names):
            duplicate = next(n for n in names if names.count(n) > 1)
            raise ToolError(f"{where}: two tools are named {duplicate!r}", where)
        return schemas

    def waiting(self, call_id: str) -> bool:
        """Whether the call ``call_id`` waits for the client's output."""
        return call_id in self._pending

    def answered(self, call_id: str) -> bool:
        """Whether ``call_id`` was a call to the client (its result is the client's item)."""
        return call_id in self._calls

    async def _handle(self, params: Any) -> None:
        self._pending[params.tool_call_id] = params.result_callback
        self._calls[params.tool_call_id] = None
        while len(self._calls) > 4 * MAX_PENDING:
            self._calls.popitem(last=False)
        while len(self._pending) > MAX_PENDING:
            old, callback = self._pending.popitem(last=False)
            logger.warning(f"tools: the client left {MAX_PENDING} calls unanswered; {old} is given up")
            await callback("the client did not answer this call", properties=_NO_RUN)

    async def resolve(self, call_id: str, output: str) -> bool:
        """Hand the client's ``output`` to the waiting call (the model is not run); False when
        no call waits under ``call_id`` (already answered, or cancelled by a barge-in)."""
        callback = self._pending.pop(call_id, None)
        if callback is None:
            return False
        await callback(_as_result(output), properties=_NO_RUN)
        return True


def _as_result(output: str) -> Any:
    # pipecat writes a result into the context as JSON: JSON text goes in as its value, so the
    # model reads the client's JSON as sent, not as a quoted string of it.
    try:
        value = json.loads(output)
    except ValueError:
        return output or "(empty output)"
    return value if value else output  # a falsy result would read as none to pipecat: "0", "false" as sent


_NO_RUN = FunctionCallResultProperties(run_llm=False)


def chat_tool_choice(choice: Any, names: list[str], param: str) -> Any:
    """A Realtime ``tool_choice`` (``auto`` | ``none`` | ``required`` | ``{type: function, name}``)
    in the chat API's shape; ToolError naming ``param`` for anything else."""
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = choice.get("name") or (choice.get("function") or {}).get("name")
        if name not in names:
            raise ToolError(f"{param} names {name!r}, which is not among the tools ({', '.join(names) or 'none'})",
                            param)
        return {"type": "function", "function": {"name": name}}
    raise ToolError(f"{param} must be 'auto', 'none', 'required' or {{type: 'function', name}}, got {choice!r}", param)
