"""A function for the real-server lane that must be importable (``host="process"``): its
sleep is written ``lab.hours``, so it scales in the process host as in the kernel."""

from __future__ import annotations

import inngest

from lab_support import lab

client = inngest.Inngest(app_id="real-lane-process", is_production=False)


@client.create_function(fn_id="half-hour-nap", trigger=inngest.TriggerEvent(event="lane/nap"))
async def half_hour_nap(ctx: inngest.Context) -> str:
    await ctx.step.sleep("half-an-hour", lab.minutes(30))
    return await ctx.step.run("woke", lambda: "woke up")
