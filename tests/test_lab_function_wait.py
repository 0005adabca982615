"""``lab.wait(function)``: a burst waited on as one queue (notebook API -> HTTP -> engine -> SDK).

Waiting on 1,000 event ids asks for each of them on every poll; a Function as the target
asks the engine once per poll whether any of its runs is still queued or running.
"""

from __future__ import annotations

import datetime

import inngest
import pytest

from lab_support.lab_object import Lab
from lab_support.waiting import RunWaitTimeout

pytestmark = pytest.mark.timeout(300)

client = inngest.Inngest(app_id="fnwait", is_production=False)


@client.create_function(fn_id="reply", trigger=inngest.TriggerEvent(event="fnwait/email"),
                        concurrency=[inngest.Concurrency(limit=10)], retries=0)
async def reply(ctx: inngest.Context) -> str:
    async def draft() -> str:
        if ctx.event.data.get("bad"):
            raise ValueError("no template for this customer")
        return "drafted"
    return await ctx.step.run("draft", draft)


@client.create_function(fn_id="nap", trigger=inngest.TriggerEvent(event="fnwait/nap"))
async def nap(ctx: inngest.Context) -> str:
    await ctx.step.wait_for_event("ok", event="fnwait/ok", timeout=datetime.timedelta(days=1))
    return "woke"


@pytest.fixture
def lab(fresh_engine):
    the_lab = Lab()
    the_lab.start([reply, nap], engine=fresh_engine.url, quiet=True)
    try:
        yield the_lab
    finally:
        the_lab.stop()


def test_a_burst_is_waited_on_as_one_queue_and_counted_per_status(lab):
    lab.chaos.slow_step(reply, "draft", "8s")
    data = [{"n": n, "bad": n % 100 == 0} for n in range(300)]
    ids = lab.send("fnwait/email", data)
    counts = lab.wait(reply, timeout=120)
    assert counts == {"COMPLETED": 297, "FAILED": 3}, counts
    assert repr(counts) == "300 run(s): 297 completed, 3 failed"
    assert lab.stats(reply).peak == 10
    # The same answer as waiting on every event id, which takes far more requests.
    assert sorted(r["status"] for r in lab.wait(ids[:20], timeout=60)) == \
        ["COMPLETED"] * 19 + ["FAILED"]


def test_a_run_that_waits_for_an_event_times_out_with_a_hint(lab):
    lab.send("fnwait/nap", {})
    with pytest.raises(RunWaitTimeout, match=r"runs still queued or running.*clock.advance"):
        lab.wait(nap, timeout=1)


def test_status_is_refused_for_a_function_target(lab):
    with pytest.raises(ValueError, match="every run to finish"):
        lab.wait(reply, status="Completed")
