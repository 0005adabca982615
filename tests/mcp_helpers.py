"""Helpers for the MCP tests: serve the lab MCP server over real streamable HTTP.

The engine's app will mount the server at /mcp itself; these helpers build the same shape
(a Starlette app with the server mounted at /mcp and its session manager in the lifespan)
so the tools can be tested through an MCP client before and independently of that wiring.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import Any

import uvicorn
from mcp import Client
from starlette.applications import Starlette
from starlette.routing import Mount

from lab_support.devserver.mcp_tools import create_mcp_server
from lab_support.host import free_port

START_TIMEOUT_S = 10.0
CALL_TIMEOUT_S = 60.0


def mcp_app(api_base: str, docs_dir=None) -> Starlette:
    kwargs = {"docs_dir": docs_dir} if docs_dir is not None else {}
    server = create_mcp_server(api_base, **kwargs)
    mounted = server.streamable_http_app()

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        async with server.session_manager.run():
            yield

    return Starlette(routes=[Mount("/mcp", app=mounted)], lifespan=lifespan)


@contextlib.contextmanager
def serve_mcp(api_base: str, docs_dir=None):
    """Serve the MCP app on a free loopback port in a thread; yields the base URL."""
    port = free_port()
    config = uvicorn.Config(mcp_app(api_base, docs_dir), host="127.0.0.1", port=port,
                            log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.run, name=f"mcp-test-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError(f"the MCP test server did not start on port {port} "
                               f"within {START_TIMEOUT_S} s")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(START_TIMEOUT_S)
        if thread.is_alive():
            server.force_exit = True
            thread.join(START_TIMEOUT_S)


def call_tools(url: str, calls: list[tuple[str, dict[str, Any]]]) -> list:
    """Call several tools in one MCP client session; returns the CallToolResults."""

    async def run() -> list:
        async with Client(url, read_timeout_seconds=CALL_TIMEOUT_S) as client:
            return [await client.call_tool(name, args) for name, args in calls]

    return asyncio.run(asyncio.wait_for(run(), CALL_TIMEOUT_S * max(1, len(calls))))


def text_of(result) -> str:
    return "".join(getattr(part, "text", "") for part in result.content)
