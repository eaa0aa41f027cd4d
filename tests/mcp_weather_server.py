"""An MCP server for the tests (the mcp SDK's own MCPServer): ``python mcp_weather_server.py``
serves stdio; ``... http PORT`` serves streamable HTTP on 127.0.0.1:PORT/mcp."""

from __future__ import annotations

import sys

from mcp.server.mcpserver import MCPServer

server = MCPServer("weather")


@server.tool()
def get_forecast(city: str) -> str:
    """Get the weather forecast for a city."""
    return f"rain and 9 degrees in {city} (from MCP)"


@server.tool()
def broken_forecast(city: str) -> str:
    """A forecast service that fails."""
    raise RuntimeError("the MCP forecast service is down")


if __name__ == "__main__":
    if sys.argv[1:2] == ["http"]:
        server.run("streamable-http", port=int(sys.argv[2]))
    else:
        server.run("stdio")
