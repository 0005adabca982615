"""Call the customer-data MCP tools from Python code (the Inngest steps, notebooks).

    async with CustomerData() as cd:
        customer = await cd.call("load_customer", customer_id="c-4429")

Connects in-process by default (real MCP messages, no subprocess: fast enough for a burst of
runs), over stdio with ``transport="stdio"``, or to a running HTTP server when
``CUSTOMER_DATA_MCP_URL`` (or ``url=``) is set.
"""

from __future__ import annotations

import json
import os
import sys

from mcp import Client, StdioServerParameters


class ToolCallError(RuntimeError):
    """The MCP tool answered with an error; the message is the server's."""


class ToolInputError(ToolCallError):
    """The tool refused the input (unknown customer, invalid value): retrying cannot help."""


_INPUT_ERRORS = ("CustomerNotFound:", "InvalidInput:")


def stdio_params() -> StdioServerParameters:
    """How to spawn the server over stdio with this interpreter and environment."""
    return StdioServerParameters(command=sys.executable, args=["-m", "customer_data_mcp.server"],
                                 env=dict(os.environ))


class CustomerData:
    def __init__(self, *, transport: str = "inprocess", url: str | None = None) -> None:
        url = url or os.environ.get("CUSTOMER_DATA_MCP_URL")
        if url:
            target = url
        elif transport == "stdio":
            target = stdio_params()
        elif transport == "inprocess":
            from .server import server

            target = server
        else:
            raise ValueError(f"transport must be 'inprocess' or 'stdio', got {transport!r}")
        self._client = Client(target, read_timeout_seconds=60)

    async def __aenter__(self) -> "CustomerData":
        await self._client.__aenter__()
        return self

    async def __aexit__(self, *exc) -> None:
        await self._client.__aexit__(*exc)

    async def call(self, tool: str, **arguments):
        result = await self._client.call_tool(tool, arguments)
        text = "".join(getattr(c, "text", "") for c in result.content)
        if result.is_error:
            error = ToolInputError if any(e in text for e in _INPUT_ERRORS) else ToolCallError
            raise error(f"{tool}: {text}")
        return json.loads(text)


async def call_tool(tool: str, **arguments):
    """One tool call on a short-lived in-process connection."""
    async with CustomerData() as cd:
        return await cd.call(tool, **arguments)
