"""The agent's own function tools (the MCP server provides the data tools).

``request_escalation`` does not post anywhere and does not know about Inngest: it records an
escalation request, with a deterministic idempotency key, on the run context. Whoever ran the
agent decides what to do with it; the Inngest envelope sends it as a
``customer/escalation.requested`` event with that key as the event id.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from agents import RunContextWrapper, function_tool

ESCALATION_EVENT = "customer/escalation.requested"


@dataclass
class SupportContext:
    """Per-run state the tools can see. ``source_id`` names what triggered the run (an email's
    message id or event id) so keys derived from it are stable across retries and replays."""

    source_id: str = "cli"
    escalations: list[dict] = field(default_factory=list)


def escalation_request_id(source_id: str, customer_id: str, reason: str) -> str:
    digest = hashlib.sha1(f"{source_id}|{customer_id}|{reason}".encode()).hexdigest()[:16]
    return f"esc-{customer_id}-{digest}"


@function_tool
def request_escalation(ctx: RunContextWrapper[SupportContext], customer_id: str, reason: str,
                       summary: str) -> str:
    """Ask for a human review of this case (chargeback, legal threat, large refund).

    Args:
        customer_id: The customer the case is about.
        reason: Short machine-readable reason, e.g. "chargeback".
        summary: Two or three sentences a reviewer can act on.
    """
    request_id = escalation_request_id(ctx.context.source_id, customer_id, reason)
    request = {"request_id": request_id, "customer_id": customer_id, "reason": reason,
               "summary": summary, "event": ESCALATION_EVENT}
    if all(r["request_id"] != request_id for r in ctx.context.escalations):
        ctx.context.escalations.append(request)
    return json.dumps({"status": "escalation_requested", "request_id": request_id})


SUPPORT_TOOLS = [request_escalation]
