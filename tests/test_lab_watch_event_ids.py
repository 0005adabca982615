"""``lab.watch(event_ids)``: an event id is asked for as a run once, not retried for seconds.

The client retries a run id GraphQL does not know yet (a real server lists runs in GraphQL a
moment after REST). An event id is never a run, so waiting there for it costs that retry time
per event: 24 event ids took two minutes. Through the lab (notebook API -> HTTP -> engine).
"""

from __future__ import annotations

import inngest
import pytest

from lab_support.client import EngineClient
from lab_support.lab_object import Lab

pytestmark = pytest.mark.timeout(180)

client = inngest.Inngest(app_id="watchids", is_production=False)


@client.create_function(fn_id="reply", trigger=inngest.TriggerEvent(event="watchids/email"))
async def reply(ctx: inngest.Context) -> str:
    return await ctx.step.run("draft", lambda: f"hi {ctx.event.data['customer_id']}")


def test_watching_event_ids_asks_for_each_as_a_run_once(fresh_engine, monkeypatch):
    lab = Lab()
    lab.start([reply], engine=fresh_engine.url, quiet=True)
    try:
        ids = lab.send("watchids/email", [{"customer_id": f"c-{n % 3}"} for n in range(6)])
        lab.wait(ids, timeout=60)
        waits: list[float] = []
        original = EngineClient.run

        def recording(self, run_id, *, wait=5.0):
            if run_id in ids:
                waits.append(wait)
            return original(self, run_id, wait=wait)

        monkeypatch.setattr(EngineClient, "run", recording)
        lanes = lab.watch(ids, lane="event.data.customer_id", timeout=30)
        assert sorted(lane.lane for lane in lanes) == ["c-0", "c-0", "c-1", "c-1", "c-2", "c-2"]
        assert waits and set(waits) == {0}, waits
    finally:
        lab.stop()
