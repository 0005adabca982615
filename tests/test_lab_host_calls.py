"""The function host's record of the calls it answered (``lab_support/host_calls.py``), which
``lab.stats`` reads on a real dev server.

The lab is pointed at the embedded engine but told it is a real server, so it turns the
record on, slow steps are held in the host (real seconds) and ``lab.stats`` reads the host:
SDK → HTTP → engine → host layer → SDK, the path a real ``inngest dev`` takes. The engine's
own record of the same calls is the reference: the host sees each call inside the engine's
slot, so its peaks can match the engine's but never exceed them.
"""

from __future__ import annotations

import httpx
import inngest
import pytest
from test_lab_host_faults import RealLookingClient

from lab_support import stepstats
from lab_support.client import EngineClient
from lab_support.lab_object import Lab

pytestmark = pytest.mark.timeout(240)

client = inngest.Inngest(app_id="calltest", is_production=False)


@client.create_function(
    fn_id="capped", trigger=inngest.TriggerEvent(event="calls/capped"),
    concurrency=[inngest.Concurrency(limit=2),
                 inngest.Concurrency(limit=1, key="event.data.customer")])
async def capped(ctx: inngest.Context) -> str:
    return await ctx.step.run("draft", lambda: ctx.event.data["customer"])


@client.create_function(fn_id="open", trigger=inngest.TriggerEvent(event="calls/open"))
async def uncapped(ctx: inngest.Context) -> str:
    return await ctx.step.run("draft", lambda: ctx.event.data["customer"])


EMAILS = [{"customer": c} for c in "aaaabbcc"]


@pytest.fixture
def real_looking_lab(engine):
    lab = Lab()
    lab.start([capped, uncapped], engine=engine.url, quiet=True)
    lab.api = RealLookingClient(engine.url)
    lab._configure_host()  # as lab.start does on a real server: the host records its calls
    try:
        yield lab
    finally:
        lab.stop()


def test_the_host_records_calls_only_on_a_real_server(real_looking_lab, engine):
    assert httpx.get(real_looking_lab._host.faults_url, timeout=5).json()["record_calls"]
    embedded = Lab()
    try:
        embedded.start([capped], engine=engine.url, quiet=True)
        state = httpx.get(embedded._host.faults_url, timeout=5).json()
        assert state["record_calls"] is False, "the embedded engine keeps its own record"
        assert httpx.get(embedded._host.faults_url + "/calls", timeout=5).json()["calls"] == []
    finally:
        embedded.stop()


def test_host_peaks_of_a_capped_burst_match_the_engine(real_looking_lab, engine):
    lab = real_looking_lab
    lab.chaos.slow_step(capped, "draft", 0.3)  # held in the host: real time, slot kept
    runs = lab.wait(lab.send("calls/capped", EMAILS), status="Completed", timeout=120)
    assert len(runs) == len(EMAILS)
    calls = httpx.get(lab._host.faults_url + "/calls", params={"function": "capped"},
                      timeout=5).json()["calls"]
    assert len(calls) >= 2 * len(EMAILS), "a planning call and a step call per run at least"
    assert all(end >= start for _fn, start, end, _event in calls)
    stats = lab.stats(capped)
    assert stats.source == "function host", "lab.stats should read the host on a real server"
    engine_stats = stepstats.from_engine(EngineClient(lab.api.url), capped.id,
                                         "event.data.customer")
    assert stats.peak == engine_stats.peak == 2, (stats, engine_stats)
    assert stats.peaks == {"a": 1, "b": 1, "c": 1} == engine_stats.peaks


def test_host_peaks_see_overlap_when_nothing_caps_it(real_looking_lab):
    lab = real_looking_lab
    lab.chaos.slow_step(uncapped, "draft", 0.5)
    lab.wait(lab.send("calls/open", EMAILS), status="Completed", timeout=120)
    stats = lab.stats(uncapped, key="event.data.customer")
    assert stats.source == "function host"
    assert stats.peak > 2 and stats.peaks["a"] > 1, stats  # 8 calls held 0.5 s each, at once


def test_bad_settings_are_refused(real_looking_lab):
    answer = httpx.put(real_looking_lab._host.faults_url + "/settings",
                       json={"record_calls": "yes"}, timeout=5)
    assert answer.status_code == 400 and "record_calls" in answer.json()["error"]
