"""handle_customer_email: an inbound email, answered by the support agent, durably (Decision 3).

Five steps, each memoized by the engine: a failure after ``run-agent`` retries only what
follows it, so the model is never paid twice for the same email.
"""

import inngest
from customer_data_mcp.client import CustomerData

from . import agent_step
from .inngest_client import inngest_client


async def customer_data(tool: str, **arguments):
    """One call to the customer-data MCP server, the Worker's system of record."""
    async with CustomerData() as server:
        return await server.call(tool, **arguments)


# BEGIN SOLUTION
@inngest_client.create_function(
    fn_id="handle-customer-email",
    trigger=inngest.TriggerEvent(event="customer/email.received"),
)
async def handle_customer_email(ctx: inngest.Context) -> dict:
    email = {**ctx.event.data, "event_id": ctx.event.id}
    who = email["customer_id"]
    customer = await ctx.step.run(
        "load-customer", lambda: customer_data("load_customer", customer_id=who))
    thread = await ctx.step.run(
        "load-thread", lambda: customer_data("load_thread", customer_id=who))
    # The whole agent invocation is one step: its answer is stored, never recomputed.
    reply = await ctx.step.run("run-agent", agent_step.run_agent, email, customer, thread)
    thread_id = (thread.get("thread") or {}).get("id")
    saved = await ctx.step.run("save-draft-reply", lambda: customer_data(
        "save_draft_reply", customer_id=who, body=reply["draft"], thread_id=thread_id))
    await ctx.step.run("audit-handled", lambda: customer_data(
        "record_audit", action="email_drafted", customer_id=who,
        payload={"run_id": ctx.run_id, "event_id": ctx.event.id, "draft_id": saved["id"]}))
    return {"status": "drafted", "draft_id": saved["id"]}


functions = [handle_customer_email]
# END SOLUTION
