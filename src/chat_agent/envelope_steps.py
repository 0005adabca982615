"""The bodies of the Inngest steps in ``tasks.py``: each one calls the Worker's unchanged
internals (the customer-data MCP server, the agents) and returns JSON-ready data for the memo.

Expected bad input becomes ``inngest.NonRetriableError`` with a clear message, so a run for an
unknown customer (or a NUL byte, a boolean id, ...) fails at once, burns no retries and writes
nothing: the store's ``InvalidInput`` / ``CustomerNotFound``, directly or through MCP.

A model failure (``openai.RateLimitError`` for a 429, a 5xx, a timeout) is left as it is: the
agent step fails, Inngest retries it with backoff, and the trace shows each failed attempt.
"""

from __future__ import annotations

import re

import anyio.to_thread
import inngest

from customer_data_mcp import store
from customer_data_mcp.client import CustomerData, ToolCallError, ToolInputError

from .agents import answer_email, draft_outreach
from .guardrails import InputRefused, prepare_input

REVIEW_CHANNEL = "escalations-review"
SENIOR_CHANNEL = "senior-support"
SAFE_ID = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")
DECISIONS = ("approve", "edit", "reject")


def _require(data: dict, key: str, event: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise inngest.NonRetriableError(f"{event} needs a non-empty string data.{key}")
    return _storable(value, f"{event} data.{key}")


def _storable(value: str, what: str) -> str:
    if "\x00" in value:
        raise inngest.NonRetriableError(f"{what} contains a NUL byte, which the Worker's "
                                        "database cannot store")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise inngest.NonRetriableError(f"{what} is not valid Unicode text") from exc
    return value


def parse_email_event(data) -> dict:
    """Check a ``customer/email.received`` payload before any step runs."""
    event = "customer/email.received"
    if not isinstance(data, dict):
        raise inngest.NonRetriableError(f"{event} data must be an object")
    parsed = {"customer_id": _require(data, "customer_id", event),
              "body": _require(data, "body", event),
              "subject": _storable(data["subject"], f"{event} data.subject")
              if isinstance(data.get("subject"), str) else None,
              "received_at": data.get("received_at")}
    if not SAFE_ID.match(parsed["customer_id"]):
        raise inngest.NonRetriableError(f"{event}: customer_id {parsed['customer_id']!r} "
                                        "has characters ids never contain")
    return parsed


def parse_escalation_event(data) -> dict:
    event = "customer/escalation.requested"
    if not isinstance(data, dict):
        raise inngest.NonRetriableError(f"{event} data must be an object")
    parsed = {k: _require(data, k, event) for k in ("request_id", "customer_id", "summary")}
    parsed["reason"] = data.get("reason") or "unspecified"
    # The request id goes into a CEL expression: only allow characters that cannot escape it.
    if not SAFE_ID.match(parsed["request_id"]):
        raise inngest.NonRetriableError(f"{event}: request_id must match {SAFE_ID.pattern}")
    return parsed


async def _tool(tool: str, **arguments):
    # Errors are re-raised outside the client's block: raised inside, the MCP client's task
    # group would wrap them in an ExceptionGroup and hide the message.
    async with CustomerData() as cd:
        try:
            return await cd.call(tool, **arguments)
        except ToolCallError as exc:
            failure = exc
    if isinstance(failure, ToolInputError):
        raise inngest.NonRetriableError(str(failure)) from failure
    raise failure


# ------------------------------------------------------------------ customer data (via MCP)

async def load_customer(customer_id: str) -> dict:
    return await _tool("load_customer", customer_id=customer_id)


async def load_thread(customer_id: str) -> dict:
    return await _tool("load_thread", customer_id=customer_id)


async def recent_activity(customer_id: str, days: int = 30) -> dict:
    return await _tool("recent_activity", customer_id=customer_id, days=days)


async def eligible_customers(days: int = 7) -> list[dict]:
    return await _tool("list_customers", tier=["pro", "enterprise"],
                       outreach_older_than_days=days)


async def save_draft(customer_id: str, body: str, thread_id: str | None, kind: str) -> dict:
    return await _tool("save_draft_reply", customer_id=customer_id, body=body,
                       thread_id=thread_id, kind=kind)


async def audit(action: str, customer_id: str, payload: dict) -> dict:
    return await _tool("record_audit", action=action, customer_id=customer_id, payload=payload)


async def mark_outreach(customer_id: str) -> dict:
    return await _tool("mark_outreach", customer_id=customer_id)


async def notify(channel: str, message: str, customer_id: str, payload: dict) -> dict:
    """The lab's Slack: a row in the outbox table (with its audit row)."""
    # A thread, so the database round trip never blocks the function host's event loop.
    try:
        return await anyio.to_thread.run_sync(
            lambda: store.notify(channel, message, customer_id, payload))
    except (store.InvalidInput, store.CustomerNotFound) as exc:
        raise inngest.NonRetriableError(f"{type(exc).__name__}: {exc}") from exc


# ------------------------------------------------------------------ agents

async def run_agent(customer: dict, thread: dict, email: dict, source_id: str) -> dict:
    try:
        body = prepare_input(email["body"])
    except InputRefused as exc:
        raise inngest.NonRetriableError(str(exc)) from exc
    thread_id = (thread.get("thread") or {}).get("id")
    return await answer_email(customer["id"], body, subject=email.get("subject"),
                              thread_id=thread_id, source_id=source_id,
                              context={"customer": customer})


async def run_health_agent(customer: dict, activity: dict, source_id: str) -> dict:
    return await draft_outreach(customer["id"], activity=activity, source_id=source_id)
