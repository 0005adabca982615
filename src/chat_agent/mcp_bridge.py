"""Give an Agents SDK agent the customer-data MCP server.

``stdio`` spawns ``python -m customer_data_mcp.server`` (the SDK's own ``MCPServerStdio``), as a
learner's Claude Code or CLI would. ``inprocess`` speaks the same MCP protocol to the server
object inside this process, which a burst of 20 Inngest runs on a 2-core laptop can afford.
"""

from __future__ import annotations

import os
import sys

from agents.mcp import MCPServer, MCPServerStdio
from mcp import Client


class InProcessMCPServer(MCPServer):
    """An Agents SDK MCP server backed by ``mcp.Client`` connected to a local server object."""

    def __init__(self, server, name: str = "customer-data") -> None:
        super().__init__()
        self._server = server
        self._name = name
        self._client: Client | None = None

    @property
    def name(self) -> str:
        return self._name

    async def connect(self) -> None:
        if self._client is None:
            client = Client(self._server, read_timeout_seconds=60)
            await client.__aenter__()
            self._client = client

    async def cleanup(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.__aexit__(None, None, None)

    def _require(self) -> Client:
        if self._client is None:
            raise RuntimeError("MCP server not connected; use 'async with' or call connect()")
        return self._client

    async def list_tools(self, run_context=None, agent=None):
        return (await self._require().list_tools()).tools

    async def call_tool(self, tool_name, arguments, meta=None):
        return await self._require().call_tool(tool_name, arguments or {})

    async def list_prompts(self):
        return await self._require().list_prompts()

    async def get_prompt(self, name, arguments=None):
        return await self._require().get_prompt(name, arguments or {})

    async def __aenter__(self):
        await self.connect()
        return self

    async def __aexit__(self, *exc):
        await self.cleanup()


def customer_data_server(mode: str | None = None) -> MCPServer:
    """The customer-data MCP server for an agent; ``mode`` defaults to ``$CHAT_AGENT_MCP`` or
    ``inprocess``."""
    mode = mode or os.environ.get("CHAT_AGENT_MCP", "inprocess")
    if mode == "stdio":
        return MCPServerStdio(
            params={"command": sys.executable, "args": ["-m", "customer_data_mcp.server"],
                    "env": dict(os.environ)},
            name="customer-data", cache_tools_list=True, client_session_timeout_seconds=60)
    if mode == "inprocess":
        from customer_data_mcp.server import server

        return InProcessMCPServer(server)
    raise ValueError(f"CHAT_AGENT_MCP must be 'inprocess' or 'stdio', got {mode!r}")
