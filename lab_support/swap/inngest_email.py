"""The email flow as an Inngest function: the engine's half of the swap (notebook 25).

Served by the lab's process host (``lab.start([handle_email], host="process")``), so the
crash point can kill a real worker process; the engine keeps the run and its step memos and
retries the step when the host is back. Trigger, memo, retries and flow control are all
declared here, in the decorator and in ``ctx.step`` calls.
"""

from __future__ import annotations

import datetime as dt

import inngest
from customer_data_mcp.client import ToolInputError

from . import email_steps as steps

ENGINE = "inngest"
client = inngest.Inngest(app_id="swap-inngest", is_production=False)


async def _step(ctx: inngest.Context, step_id: str, body, *args):
    """``ctx.step.run`` with the Worker's permanent input errors made non-retriable."""
    async def guarded():
        try:
            return await body(ENGINE, *args)
        except (ToolInputError, *steps.PERMANENT) as exc:
            raise inngest.NonRetriableError(str(exc)) from exc
    return await ctx.step.run(step_id, guarded)


@client.create_function(
    fn_id="swap-email",
    trigger=inngest.TriggerEvent(event="swap/email.received"),               # trigger
    retries=3,                                                                # retry
    concurrency=[inngest.Concurrency(limit=10),                               # flow control
                 inngest.Concurrency(limit=2, key="event.data.customer_id")],
    throttle=inngest.Throttle(limit=100, period=dt.timedelta(minutes=1)),
)
async def handle_email(ctx: inngest.Context) -> dict:
    email = {**ctx.event.data, "source_id": ctx.event.id}
    customer_id = email["customer_id"]
    customer = await _step(ctx, "load-customer", steps.load_customer, customer_id)   # memo
    thread = await _step(ctx, "load-thread", steps.load_thread, customer_id)
    result = await _step(ctx, "run-agent", steps.run_agent, customer, thread, email)
    draft = await _step(ctx, "save-draft-reply", steps.save_draft, customer_id,
                        result["draft"], thread, email["source_id"],
                        bool(email.get("write_once")))
    await _step(ctx, "audit-handled", steps.audit, customer_id, email["source_id"],
                draft["id"], result["model"])
    return {"status": "drafted", "draft_id": draft["id"]}


functions = [handle_email]
