"""The ``customer-data`` MCP server: the Worker's only door to its system of record.

    python -m customer_data_mcp.server                       # stdio (what agents spawn)
    python -m customer_data_mcp.server --http --port 8765    # streamable HTTP on 127.0.0.1

Each tool is a thin wrapper over ``customer_data_mcp.store`` and answers with JSON text.
Database work runs in a worker thread so one slow query never stalls the server's event loop
(the in-process server shares its loop with the Inngest function host).

Errors say whether retrying can help. Input the store refuses, an unknown customer, and
arguments that fail the tool's schema (a string where a number belongs, ``true`` as an id:
integers are strict, so a boolean is never read as 1) answer ``InvalidInput: ...`` /
``CustomerNotFound: ...``; callers treat those as permanent. A database or clock that cannot be
reached answers ``Unavailable: ...``, which is worth a retry. Anything else stays a generic
error whose details are only in the server log.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Annotated

import anyio.to_thread
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from pydantic import Strict, ValidationError

from . import clock, db, store

# JSON has no separate boolean-free integer type; strict mode keeps `true` from becoming 1.
StrictInt = Annotated[int, Strict()]

INSTRUCTIONS = (
    "Customer-support system of record. Load the customer and thread before drafting; every "
    "write (drafts, audit rows, outreach marks) is audited in the same transaction.")


async def _call(fn, *args, **kwargs) -> str:
    try:
        result = await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))
    except (store.InvalidInput, store.CustomerNotFound) as exc:
        # Expected failures reach the caller with their message (other errors stay generic).
        raise ToolError(f"{type(exc).__name__}: {exc}") from exc
    except (db.DatabaseError, clock.ClockUnavailable) as exc:
        raise ToolError(f"Unavailable: {exc}") from exc
    return json.dumps(result, sort_keys=True)


def _argument_errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ())) or "arguments"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


class CustomerDataServer(MCPServer):
    """Argument-schema failures read as ``InvalidInput`` (permanent), not as a bare error."""

    async def call_tool(self, name, arguments, context=None):
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if isinstance(exc, UnexpectedToolError) or not isinstance(exc.__cause__,
                                                                      ValidationError):
                raise
            raise ToolError(f"Error executing tool {name}: InvalidInput: arguments rejected: "
                            f"{_argument_errors(exc.__cause__)}") from exc.__cause__


def build_server() -> MCPServer:
    server = CustomerDataServer("customer-data", instructions=INSTRUCTIONS, version="1.0.0")

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
                             outreach_older_than_days: StrictInt | None = None,
                             limit: StrictInt = 1000) -> str:
        """List customers, optionally by tier (free/pro/enterprise) and only those not
        contacted proactively for more than N days."""
        return await _call(store.list_customers, tier, outreach_older_than_days, limit)

    @server.tool()
    async def recent_activity(customer_id: str, days: StrictInt = 30) -> str:
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
    async def find_similar_cases(query: str, limit: StrictInt = 3) -> str:
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
