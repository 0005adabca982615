"""Functions for the capability tests and the smoke notebook (app ``capab``).

* ``send_email``: 10 steps at once overall, 2 per ``event.data.customer_id`` (Decision 6's
  limits); its ``deliver`` step is what ``lab.chaos.slow_step`` slows down.
* ``pipeline``: four steps; ``transform`` fails its first two attempts when the event says
  ``flaky``, ``load`` fails while ``SETTINGS["load_fails"]`` is set (the bug to fix).
* ``nightly``: a cron in Karachi time that reports what event started it.
* ``nap``: one sleep of ``event.data.days`` days (plan sleep limits).
* ``bulk_write``: a batch of 50 (too big for Hobby), in its own app so the others still sync.

Steps count what really executed in ``EXECUTED`` (per run id), so a memo hit is visible.
"""

from __future__ import annotations

import datetime
from collections import defaultdict

import inngest

APP_ID = "capab"
client = inngest.Inngest(app_id=APP_ID, is_production=False)
batch_client = inngest.Inngest(app_id="capab-batch", is_production=False)
SETTINGS = {"load_fails": False}
EXECUTED: dict[str, list[str]] = defaultdict(list)
LIMITS = [inngest.Concurrency(limit=10),
          inngest.Concurrency(limit=2, key="event.data.customer_id")]


@client.create_function(fn_id="send-email", trigger=inngest.TriggerEvent(event="cap/email"),
                        concurrency=LIMITS)
async def send_email(ctx: inngest.Context):
    async def deliver():
        EXECUTED[ctx.run_id].append("deliver")
        return f"sent to {ctx.event.data.get('customer_id')}"

    return await ctx.step.run("deliver", deliver)


@client.create_function(fn_id="send-sms", trigger=inngest.TriggerEvent(event="cap/sms"))
async def send_sms(ctx: inngest.Context):
    async def deliver():
        EXECUTED[ctx.run_id].append("deliver")
        return "texted"

    return await ctx.step.run("deliver", deliver)


@client.create_function(fn_id="pipeline", trigger=inngest.TriggerEvent(event="cap/pipeline"),
                        retries=2)
async def pipeline(ctx: inngest.Context):
    def body(name: str):
        async def run():
            EXECUTED[ctx.run_id].append(name)
            if name == "transform" and ctx.event.data.get("flaky") and ctx.attempt < 2:
                raise RuntimeError("transform timed out (flaky on purpose)")
            if name == "load" and SETTINGS["load_fails"]:
                raise ValueError("load rejected the rows: schema mismatch (the bug)")
            return f"{name} done"
        return run

    results = [await ctx.step.run(name, body(name))
               for name in ("extract", "transform", "load", "notify")]
    return results[-1]


@client.create_function(fn_id="nightly",
                        trigger=inngest.TriggerCron(cron="TZ=Asia/Karachi 0 9 * * *"))
async def nightly(ctx: inngest.Context):
    return {"event": ctx.event.name, "scheduledAt": ctx.event.data.get("scheduledAt")}


@client.create_function(fn_id="nap", trigger=inngest.TriggerEvent(event="cap/nap"))
async def nap(ctx: inngest.Context):
    await ctx.step.sleep("rest", datetime.timedelta(days=ctx.event.data.get("days", 1)))
    return "rested"


@batch_client.create_function(fn_id="bulk-write", trigger=inngest.TriggerEvent(event="cap/row"),
                              batch_events=inngest.Batch(max_size=50,
                                                         timeout=datetime.timedelta(seconds=30)))
async def bulk_write(ctx: inngest.Context):
    return len(ctx.events)


FUNCTIONS = [send_email, send_sms, pipeline, nightly, nap]


def executed(run_id: str) -> list[str]:
    return list(EXECUTED.get(run_id, []))
