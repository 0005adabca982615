"""The Worker's operational envelope: four Inngest functions around the unchanged agent.

* ``handle_customer_email``         customer/email.received → draft a reply (Decisions 3, 4, 6)
* ``daily_customer_health_check``   cron 09:00 UTC → fan out one event per eligible customer (5)
* ``process_customer_health_check`` customer/health_check.requested → outreach draft (5, 6)
* ``escalate_with_human_approval``  customer/escalation.requested → 4 h human gate (7)

Rules (checked by ``python -m chat_agent.lint_envelope``): every agent call runs inside
``step.run``; every event we send has an ``id``; every ``wait_for_event`` has a timeout and an
audited timeout branch. The step bodies live in ``envelope_steps``.
"""

from __future__ import annotations

import datetime as dt

import inngest

from . import envelope_steps as steps
from .inngest_client import inngest_client

HITL_TIMEOUT = dt.timedelta(hours=4)


@inngest_client.create_function(
    fn_id="handle-customer-email",
    name="Handle customer email",
    trigger=inngest.TriggerEvent(event="customer/email.received"),
    concurrency=[
        # OpenAI allows ~30 requests/min and the Postgres pool has 20 connections: at most 10
        # agent runs at once keeps both safe with room for the other functions.
        inngest.Concurrency(limit=10),
        # A noisy customer (an email storm, a retry loop on their side) holds at most 2 slots,
        # so everyone else keeps getting answers.
        inngest.Concurrency(limit=2, key="event.data.customer_id"),
    ],
    # Smooth the start rate: a Monday-morning burst starts at most 100 runs per minute.
    throttle=inngest.Throttle(limit=100, period=dt.timedelta(minutes=1)),
)
async def handle_customer_email(ctx: inngest.Context) -> dict:
    email = steps.parse_email_event(ctx.event.data)
    customer_id = email["customer_id"]
    customer = await ctx.step.run("load-customer", steps.load_customer, customer_id)
    thread = await ctx.step.run("load-thread", steps.load_thread, customer_id)
    source_id = ctx.event.id or ctx.run_id
    # The whole agent invocation is one memoized step: a crash after it never re-runs it.
    result = await ctx.step.run("run-agent", steps.run_agent, customer, thread, email, source_id)
    if result["escalations"]:
        await ctx.step.send_event("request-escalation", [
            inngest.Event(name="customer/escalation.requested", id=esc["request_id"],
                          data={**esc, "draft": result["draft"]})
            for esc in result["escalations"]])
    thread_id = (thread.get("thread") or {}).get("id")
    draft = await ctx.step.run("save-draft-reply", steps.save_draft, customer_id,
                               result["draft"], thread_id, "reply")
    await ctx.step.run("audit-handled", steps.audit, "email_drafted", customer_id, {
        "run_id": ctx.run_id, "event_id": ctx.event.id, "draft_id": draft["id"],
        "model": result["model"], "tool_calls": result["tool_calls"]})
    return {"status": "drafted", "draft_id": draft["id"]}


@inngest_client.create_function(
    fn_id="daily-customer-health-check",
    name="Daily customer health check",
    # Once a day at 09:00 UTC; default concurrency is enough for a once-a-day job.
    trigger=inngest.TriggerCron(cron="0 9 * * *"),
)
async def daily_customer_health_check(ctx: inngest.Context) -> dict:
    # The trigger's timestamp (not the wall clock) names the day, so a replay or a second
    # firing on the same day produces the same event ids, which the engine dedupes.
    day = dt.datetime.fromtimestamp((ctx.event.ts or 0) / 1000, dt.timezone.utc).date()
    customers = await ctx.step.run("fetch-eligible-customers", steps.eligible_customers, 7)
    if customers:
        await ctx.step.send_event("fan-out-events", [
            inngest.Event(name="customer/health_check.requested",
                          id=f"health-check-{c['id']}-{day.isoformat()}",
                          data={"customer_id": c["id"], "date": day.isoformat()})
            for c in customers])
    return {"customers_scheduled": len(customers), "date": day.isoformat()}


@inngest_client.create_function(
    fn_id="process-customer-health-check",
    name="Process customer health check",
    trigger=inngest.TriggerEvent(event="customer/health_check.requested"),
    # Batch work: the cron can fan out hundreds of events at 09:00. Five at a time and 30
    # starts a minute keep the burst from eating the OpenAI budget of live email replies.
    concurrency=[inngest.Concurrency(limit=5)],
    throttle=inngest.Throttle(limit=30, period=dt.timedelta(minutes=1)),
)
async def process_customer_health_check(ctx: inngest.Context) -> dict:
    data = ctx.event.data if isinstance(ctx.event.data, dict) else {}
    customer_id = data.get("customer_id")
    if not isinstance(customer_id, str) or not customer_id:
        raise inngest.NonRetriableError("customer/health_check.requested needs data.customer_id")
    customer = await ctx.step.run("load-customer", steps.load_customer, customer_id)
    activity = await ctx.step.run("load-recent-activity", steps.recent_activity, customer_id, 30)
    source_id = ctx.event.id or ctx.run_id
    result = await ctx.step.run("run-health-agent", steps.run_health_agent, customer, activity,
                                source_id)
    draft = await ctx.step.run("save-draft", steps.save_draft, customer_id, result["draft"],
                               None, "outreach")
    await ctx.step.run("mark-outreach", steps.mark_outreach, customer_id)
    await ctx.step.run("audit-drafted", steps.audit, "outreach_drafted", customer_id, {
        "run_id": ctx.run_id, "draft_id": draft["id"], "date": data.get("date")})
    return {"status": "drafted", "customer_id": customer_id, "draft_id": draft["id"]}


@inngest_client.create_function(
    fn_id="escalate-with-human-approval",
    name="Escalate with human approval",
    trigger=inngest.TriggerEvent(event="customer/escalation.requested"),
    concurrency=[inngest.Concurrency(limit=5)],  # escalations are rare
)
async def escalate_with_human_approval(ctx: inngest.Context) -> dict:
    req = steps.parse_escalation_event(ctx.event.data)
    request_id, customer_id = req["request_id"], req["customer_id"]
    draft = ctx.event.data.get("draft") or req["summary"]
    await ctx.step.run("notify-reviewer", steps.notify, steps.REVIEW_CHANNEL,
                       f"Escalation {request_id} ({req['reason']}) needs a decision: "
                       "approve / edit / reject. Draft:\n" + draft, customer_id,
                       {"request_id": request_id, "actions": list(steps.DECISIONS)})
    approval = await ctx.step.wait_for_event(
        "wait-for-decision", event="escalation/decision.made", timeout=HITL_TIMEOUT,
        if_exp=f"async.data.request_id == '{request_id}'")
    base = {"request_id": request_id, "run_id": ctx.run_id, "reason": req["reason"]}

    if approval is None:
        # No silent timeouts: the audit row says nobody reviewed it, then we post with a warning.
        await ctx.step.run("audit-timeout", steps.audit, "escalation_posted_via_timeout",
                           customer_id, {**base, "reviewer": "timeout"})
        await ctx.step.run("post-escalation", steps.notify, steps.SENIOR_CHANNEL,
                           "[NO HUMAN REVIEW - 4 h timeout]\n" + draft, customer_id, base)
        return {"status": "posted_via_timeout", "request_id": request_id}

    decision = approval.data.get("decision")
    reviewer = approval.data.get("reviewer") or "unknown-reviewer"
    if decision == "reject":
        await ctx.step.run("audit-rejected", steps.audit, "escalation_rejected", customer_id,
                           {**base, "reviewer": reviewer})
        return {"status": "rejected", "request_id": request_id}
    if decision == "edit":
        edited = approval.data.get("edited_text")
        if not isinstance(edited, str) or not edited.strip():
            raise inngest.NonRetriableError("an 'edit' decision needs data.edited_text")
        await ctx.step.run("audit-edited", steps.audit, "escalation_edited", customer_id,
                           {**base, "reviewer": reviewer, "edited_text": edited})
        await ctx.step.run("post-escalation", steps.notify, steps.SENIOR_CHANNEL, edited,
                           customer_id, base)
        return {"status": "posted_edited", "request_id": request_id}
    if decision == "approve":
        await ctx.step.run("audit-approved", steps.audit, "escalation_approved", customer_id,
                           {**base, "reviewer": reviewer})
        await ctx.step.run("post-escalation", steps.notify, steps.SENIOR_CHANNEL, draft,
                           customer_id, base)
        return {"status": "posted", "request_id": request_id}
    raise inngest.NonRetriableError(
        f"escalation/decision.made has decision {decision!r}; expected one of {steps.DECISIONS}")


functions = [handle_customer_email, daily_customer_health_check,
             process_customer_health_check, escalate_with_human_approval]
