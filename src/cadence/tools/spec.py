"""The YAML's ``tools:`` section: server-run tools, each a Python callable or an MCP server.

Kept apart from the code that runs them (``server.py``, ``mcp.py``) so that reading a config
imports no pipecat.
"""

from __future__ import annotations

import importlib
import inspect
import re
import typing
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator, Field, create_model, model_validator

from cadence.stages import Spec

TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class PythonTool(Spec):
    """A ``tools:`` entry run as a Python callable."""

    function: str = Field(pattern=r"^[\w.]+:[\w.]+$", description="module:function, importable from sys.path.")
    description: str | None = Field(None, description="What it does, for the model; default: its docstring.")
    parameters: dict[str, Any] | None = Field(None, description="Its JSON schema (type object); default: from its"
                                              " type hints.")
    timeout_s: float = Field(10.0, gt=0, le=300, description="A call that takes longer fails (the model is told).")


class MCPServer(Spec):
    """How to reach an MCP server: a command to start (stdio) or a URL (streamable HTTP)."""

    command: str | None = Field(None, description="stdio: the program to run, e.g. python.")
    args: list[str] = Field(default_factory=list, description="stdio: its arguments.")
    env: dict[str, str] | None = Field(None, description="stdio: its environment (values may be ${VAR}).")
    url: str | None = Field(None, description="streamable HTTP: the server's URL, e.g. http://127.0.0.1:9000/mcp.")

    @model_validator(mode="after")
    def _one_way(self) -> MCPServer:
        if (self.command is None) == (self.url is None):
            raise ValueError("give command (a stdio server to start) or url (a streamable HTTP server), not both")
        return self


class MCPTool(Spec):
    """A ``tools:`` entry: every tool of an MCP server (or those listed)."""

    mcp: MCPServer
    tools: list[str] | None = Field(None, description="Only these of its tools; default: all.")
    timeout_s: float = Field(30.0, gt=0, le=300, description="A call that takes longer fails (the model is told).")


def resolve(path: str) -> Callable[..., Any]:
    """``module:function`` → the callable; ValueError saying what is wrong."""
    module_name, _, attr = path.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import module {module_name!r}: {exc}") from exc
    for part in attr.split("."):
        if not hasattr(target, part):
            raise ValueError(f"module {module_name!r} has no attribute {attr!r}")
        target = getattr(target, part)
    if not callable(target):
        raise ValueError(f"{path} is not callable")
    return target


def arguments_model(fn: Callable[..., Any]) -> type:
    """A pydantic model of ``fn``'s parameters (their hints and defaults)."""
    fields: dict[str, Any] = {}
    hints = typing.get_type_hints(fn, include_extras=True)  # string hints (from __future__ annotations) resolved
    for name, parameter in inspect.signature(fn).parameters.items():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        hint = hints.get(name, Any)
        default = parameter.default if parameter.default is not inspect.Parameter.empty else ...
        fields[name] = (hint, default)
    return create_model(f"{getattr(fn, '__name__', 'tool')}_arguments", **fields)


def _named(entries: dict[str, Any]) -> dict[str, Any]:
    for name in entries:
        if not TOOL_NAME.match(name):
            raise ValueError(f"tool name {name!r}: 1-64 letters, digits, '_' or '-' (the model calls it by it)")
    return entries


ToolEntry = PythonTool | MCPTool
ToolSection = Annotated[dict[str, ToolEntry], AfterValidator(_named)]
