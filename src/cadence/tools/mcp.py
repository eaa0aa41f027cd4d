"""Tools served by MCP servers (``tools: {name: {mcp: {command, args} | {url}}}``), on pipecat's MCPClient.

Each Realtime session opens its own connection to each server (a stdio server is started for
it) when it starts, because pipecat's MCPClient is closed with the pipeline that used it;
the server's tools (or the listed ones) are then offered beside the YAML's Python tools.
A call that takes longer than ``timeout_s``, or fails, is a result the model reads
(``"the tool failed: …"``), never a dead session. A server that cannot be reached when the
session starts is an ``error`` event naming ``tools.<name>``; the session goes on without
its tools.
"""

from __future__ import annotations

import asyncio
from typing import Any

from loguru import logger

from cadence.tools.spec import MCPTool

CONNECT_TIMEOUT_S = 15.0


def _params(spec: MCPTool) -> Any:
    from mcp import StdioServerParameters
    from mcp.client.session_group import StreamableHttpParameters
    from mcp.client.stdio import get_default_environment

    server = spec.mcp
    if server.command is not None:
        # The mcp SDK's safe default environment (PATH, HOME, ...; none of this process's keys), plus the YAML's.
        env = {**get_default_environment(), **server.env} if server.env else None
        return StdioServerParameters(command=server.command, args=server.args, env=env)
    return StreamableHttpParameters(url=server.url)


def _timed(handler: Any, name: str, timeout_s: float) -> Any:
    async def call(params: Any) -> None:
        from cadence.tools.server import MAX_CHAINED_CALLS, calls_since_user, chain_ended

        if (chained := calls_since_user(params.context)) >= MAX_CHAINED_CALLS:
            await chain_ended(params, chained)
            return
        done = asyncio.Event()
        real = params.result_callback

        async def once(result: Any, **kwargs: Any) -> None:
            done.set()
            await real(result, **kwargs)

        params.result_callback = once
        try:
            await asyncio.wait_for(handler(params), timeout_s)
        except TimeoutError:
            logger.warning(f"tools: MCP tool {name} did not answer within {timeout_s} s")
            if not done.is_set():
                await real(f"the tool failed: it did not answer within {timeout_s:g} s")
        except Exception as exc:
            logger.warning(f"tools: MCP tool {name} raised {type(exc).__name__}")
            if not done.is_set():
                await real(f"the tool failed: {type(exc).__name__}: {exc}")
    return call


class SessionMCP:
    """One session's connections to the config's MCP servers and the tools they offer."""

    def __init__(self, entries: dict[str, MCPTool]):
        self.entries = entries
        self.clients: dict[str, Any] = {}
        self.schemas: list[Any] = []

    async def connect(self) -> list[tuple[str, str]]:
        """Connect to every server and list its tools; (entry name, what went wrong) for each
        one that could not be reached (its tools are left out)."""
        from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
        from pipecat.services.mcp_service import MCPClient

        failures = []
        for name, spec in self.entries.items():
            client = MCPClient(_params(spec), tools_filter=spec.tools)
            try:
                listed = await asyncio.wait_for(client.tools(), CONNECT_TIMEOUT_S)
            except Exception as exc:  # noqa: BLE001 - reported, the session goes on without it
                failures.append((name, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__))
                await _quietly(client.close())
                continue
            self.clients[name] = client
            for schema in listed.standard_tools:
                self.schemas.append(FunctionSchema(
                    name=schema.name, description=schema.description, properties=schema.properties,
                    required=schema.required, handler=_timed(schema.handler, schema.name, spec.timeout_s)))
            missing = set(spec.tools or ()) - {s.name for s in listed.standard_tools}
            if missing:
                failures.append((name, f"the server has no tool {', '.join(sorted(missing))}"))
        return failures

    async def close(self) -> None:
        """Close every connection (stops a stdio server)."""
        for client in self.clients.values():
            await _quietly(client.close())
        self.clients.clear()


async def _quietly(closing: Any) -> None:
    try:
        await asyncio.wait_for(closing, 5)
    except Exception as exc:  # noqa: BLE001 - a server gone already
        logger.debug(f"tools: closing an MCP connection: {exc!r}")
