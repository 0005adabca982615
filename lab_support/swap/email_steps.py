"""The email flow's step bodies, engine-neutral: each calls only the Worker's internals
(the customer-data MCP tools, the support agent, the store) and returns JSON-ready data.

Both envelopes (``inngest_email``, ``dbos_email``) call these with the same arguments, so a
difference between the engines' results can only come from the engines. Each body notes that
it ran (``crash.ran``), and ``save_draft`` passes the shared crash point first, so "the process
died after the agent answered, before the draft was saved" is the same moment on both.

Permanent input errors arrive as ``customer_data_mcp.client.ToolInputError`` /
``store.InvalidInput``; each envelope turns them into its own "do not retry".
"""

from __future__ import annotations

import anyio.to_thread

from customer_data_mcp import store
from customer_data_mcp.client import call_tool

from .crash import crash_point, ran

STEPS = ("load-customer", "load-thread", "run-agent", "save-draft-reply", "audit-handled")
PERMANENT = (store.InvalidInput, store.CustomerNotFound)


async def load_customer(engine: str, customer_id: str) -> dict:
    ran(engine, "load-customer")
    return await call_tool("load_customer", customer_id=customer_id)


async def load_thread(engine: str, customer_id: str) -> dict:
    ran(engine, "load-thread")
    return await call_tool("load_thread", customer_id=customer_id)


async def run_agent(engine: str, customer: dict, thread: dict, email: dict) -> dict:
    ran(engine, "run-agent")
    # Imported here: the Agents SDK is the slowest import, and a worker process that starts
    # (or restarts after a crash) should answer its engine before it first needs the agent.
    from chat_agent.agents import answer_email

    thread_id = (thread.get("thread") or {}).get("id")
    result = await answer_email(customer["id"], email["body"], subject=email.get("subject"),
                                thread_id=thread_id, source_id=email["source_id"],
                                context={"customer": customer})
    return {"draft": result["draft"], "model": result["model"],
            "tool_calls": result["tool_calls"]}


async def save_draft(engine: str, customer_id: str, draft: str, thread: dict,
                     source_id: str, write_once: bool = False) -> dict:
    """Save the draft. ``write_once`` (the fix of notebook 25's Break it): look for this
    email's earlier write first, so a step re-run after a crash finds it instead of writing a
    second draft. One flow writes one email's draft at a time, so check-then-write is enough
    here; concurrent writers would need a unique key in the table."""
    crash_point("before-save-draft", engine)
    ran(engine, "save-draft-reply")
    if write_once:
        earlier = await anyio.to_thread.run_sync(lambda: _draft_saved_for(customer_id, source_id))
        if earlier is not None:
            return {"id": earlier}
    thread_id = (thread.get("thread") or {}).get("id")
    saved = await anyio.to_thread.run_sync(lambda: store.save_draft_reply(
        customer_id, draft, thread_id, "reply", {"source_id": source_id, "engine": engine}))
    crash_point("after-save-draft", engine)
    return {"id": saved["id"]}


def _draft_saved_for(customer_id: str, source_id: str) -> int | None:
    for row in store.audit_rows("draft_saved", customer_id):
        if (row.get("payload") or {}).get("source_id") == source_id:
            return row["payload"]["draft_id"]
    return None


async def audit(engine: str, customer_id: str, source_id: str, draft_id: int,
                model: str) -> dict:
    ran(engine, "audit-handled")
    row = await anyio.to_thread.run_sync(lambda: store.record_audit(
        "email_drafted", customer_id,
        {"source_id": source_id, "engine": engine, "draft_id": draft_id, "model": model}))
    return {"audit_id": row["id"]}


async def audit_decision(engine: str, customer_id: str, request_id: str,
                         decision: dict | None) -> dict:
    """The approval gate's audit row: a decision, or the timeout (never a silent one)."""
    ran(engine, "audit-decision")
    action = "escalation_timed_out" if decision is None else f"escalation_{decision['decision']}"
    row = await anyio.to_thread.run_sync(lambda: store.record_audit(
        action, customer_id, {"source_id": request_id, "engine": engine,
                              "reviewer": (decision or {}).get("reviewer", "timeout")}))
    return {"audit_id": row["id"], "action": action}


def audit_trail(source_id: str) -> list[dict]:
    """The audit rows one email left, engine-specific values (ids, engine name) taken out:
    what must be equal whichever engine ran the flow."""
    rows = [r for r in store.audit_rows() if (r.get("payload") or {}).get("source_id") == source_id]
    keep = ("kind", "model")
    return [{"action": r["action"], "customer_id": r["customer_id"],
             **{k: r["payload"][k] for k in keep if k in r["payload"]}} for r in rows]
