"""The ``customer-data`` MCP server: the Worker's only door to its system of record.

    python -m customer_data_mcp.server                       # stdio (what agents spawn)
    python -m customer_data_mcp.server --http --port 8765    # streamable HTTP on 127.0.0.1

Each tool is a thin wrapper over ``customer_data_mcp.store`` and answers with JSON text.
Database work runs in a worker thread so one slow query never stalls the server's event loop
(the in-process server shares its loop with the Inngest function host).
"""

from __future__ import annotations

import argparse
import json
import sys

import anyio.to_thread
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from . import store

INSTRUCTIONS = (
    "Customer-support system of record. Load the customer and thread before drafting; every "
    "write (drafts, audit rows, outreach marks) is audited in the same transaction.")


async def _call(fn, *args, **kwargs) -> str:
    try:
        result = await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))
    except (store.InvalidInput, store.CustomerNotFound) as exc:
        # Expected failures reach the caller with their message (other errors stay generic).
        raise ToolError(f"{type(exc).__name__}: {exc}") from exc
    return json.dumps(result, sort_keys=True)


def build_server() -> MCPServer:
    server = MCPServer("customer-data", instructions=INSTRUCTIONS, version="1.0.0")

    @server.tool()
    async def load_customer(customer_id: str) -> str:
        """Load one customer (tier, email, last proactive outreach, open tickets) by id."""
        return await _call(store.load_customer, customer_id)

    @server.tool()
    async def load_thread(customer_id: str, thread_id: str | None = None) -> str:
        """Load the customer's most recent (or the given) conversation thread with messages."""
        return await _call(store.load_thread, customer_id, thread_id)

    @server.tool()
    async def list_customers(tier: list[str] | None = None,
                             outreach_older_than_days: int | None = None,
                             limit: int = 1000) -> str:
        """List customers, optionally by tier (free/pro/enterprise) and only those not
        contacted proactively for more than N days."""
        return await _call(store.list_customers, tier, outreach_older_than_days, limit)

    @server.tool()
    async def recent_activity(customer_id: str, days: int = 30) -> str:
        """Conversations, refunds and escalations for a customer over the last N days."""
        return await _call(store.recent_activity, customer_id, days)

    @server.tool()
    async def save_draft_reply(customer_id: str, body: str, thread_id: str | None = None,
                               kind: str = "reply") -> str:
        """Save a draft (reply/outreach/escalation) for a customer; audited."""
        return await _call(store.save_draft_reply, customer_id, body, thread_id, kind)

    @server.tool()
    async def record_audit(action: str, customer_id: str | None = None,
                           payload: dict | None = None) -> str:
        """Append one row to audit_log."""
        return await _call(store.record_audit, action, customer_id, payload)

    @server.tool()
    async def find_similar_cases(query: str, limit: int = 3) -> str:
        """Resolved tickets most similar to the query (vector search)."""
        return await _call(store.find_similar_cases, query, limit)

    @server.tool()
    async def mark_outreach(customer_id: str) -> str:
        """Record that the customer was contacted proactively now; audited."""
        return await _call(store.mark_outreach, customer_id)

    return server


server = build_server()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m customer_data_mcp.server",
                                     description="The customer-data MCP server.")
    parser.add_argument("--http", action="store_true", help="serve streamable HTTP, not stdio")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args(argv)
    if args.http:
        server.run("streamable-http", host=args.host, port=args.port)
    else:
        server.run("stdio")
    return 0


if __name__ == "__main__":
    sys.exit(main())
