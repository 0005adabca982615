"""The course's capabilities through the ``lab`` object (notebook API -> HTTP -> engine -> SDK):
invoke, events, step-level concurrency stats with slot-holding slow steps, plan limits,
billed executions, rerun / rerun from step / bulk replay, cron time zones.

The same calls are also run through a client that says it is a real dev server, so the
code paths built for one (traces instead of engine stats, run-by-run replay) are checked
against the engine's own numbers."""

from __future__ import annotations

import datetime
import json

import capability_helpers as cap
import httpx
import pytest

from lab_support import executions as billing
from lab_support import stepstats
from lab_support.client import EngineClient, LabClientError, NotOnRealServer
from lab_support.host import HostError
from lab_support.lab_object import Lab

pytestmark = pytest.mark.timeout(300)


class RealLookingClient(EngineClient):
    """The embedded engine seen by code that must also work on a real dev server."""

    @property
    def kind(self) -> str:
        return "real"


@pytest.fixture
def lab(fresh_engine):
    """A Lab on its own engine: stats history and plan limits are engine-wide."""
    the_lab = Lab()
    the_lab.start(cap.FUNCTIONS, engine=fresh_engine.url, quiet=True)
    try:
        yield the_lab
    finally:
        the_lab.stop()
        cap.SETTINGS["load_fails"] = False


def real_view(lab: Lab) -> Lab:
    """The same engine and host, through the real-server code paths."""
    other = Lab()
    other.api, other.app_id, other.functions = RealLookingClient(lab.api.url), lab.app_id, lab.functions
    return other


def burst(lab: Lab, customers: int, per_customer: int) -> list[dict]:
    data = [{"customer_id": f"c-{n % customers}"} for n in range(customers * per_customer)]
    return lab.wait(lab.send("cap/email", data), timeout=120)


def test_a_slot_holding_burst_never_passes_10_overall_or_2_per_customer(lab):
    lab.chaos.slow_step("send-email", "deliver", "8s")        # every call until clear()
    before = lab.clock.now()
    runs = burst(lab, customers=8, per_customer=3)             # 8 x 2 = 16 want a slot: 10 bind
    assert {r["status"] for r in runs} == {"COMPLETED"}
    stats = lab.stats("send-email")
    assert stats.key == "event.data.customer_id"                # the function's own key
    assert stats.peak == 10
    assert sorted(stats.peaks) == [f"c-{n}" for n in range(8)]
    assert max(stats.peaks.values()) == 2 and min(stats.peaks.values()) >= 1
    assert stats.series["executing"].max() == 10 and stats.series["queued"].max() > 0
    # Each delivery took 8 s of engine time and ran its body once; 24 of them through 10
    # slots need at least three 8 s waves, which the virtual clock jumped through.
    trace = lab.trace(runs[0]["id"]).set_index("step")
    took = (trace.loc["deliver", "ended"] - trace.loc["deliver", "started"]).total_seconds()
    assert 8 <= took < 16                               # 8 s of engine time, plus bookkeeping
    assert all(cap.executed(r["id"]) == ["deliver"] for r in runs)
    assert lab.clock.now() - before >= datetime.timedelta(seconds=24)
    # A real server has no engine stats: the caps show the same in the attempt spans. (The
    # engine also counts the millisecond calls that plan a step, which have no span, so one
    # customer's peak may read 2 here and 1 there; never more than the cap in either.)
    rebuilt = stepstats.from_traces(lab.api, stats.function, stats.key)
    assert rebuilt.peak == 10 and max(rebuilt.peaks.values()) == 2
    assert all(rebuilt.peaks[k] <= stats.peaks[k] for k in rebuilt.peaks)
    assert real_view(lab).stats("send-email").peaks == rebuilt.peaks
    lab.chaos.clear()


def test_a_burst_that_fits_the_per_key_limit_cannot_show_the_global_cap(lab):
    lab.chaos.slow_step("send-email", "deliver", "8s", times=10)
    burst(lab, customers=5, per_customer=2)
    stats = lab.stats("send-email")
    assert stats.peak == 10 and max(stats.peaks.values()) == 2   # 5 x 2 = 10: caps coincide
    assert lab.stats().peak == 10                                 # all functions


def test_hobby_caps_executing_steps_account_wide_and_refuses_long_sleeps(lab, fresh_engine):
    limits = lab.set_tier("hobby")
    assert limits["concurrent_steps"] == 5
    lab.chaos.slow_step("send-email", "deliver", "8s")
    lab.chaos.slow_step("send-sms", "deliver", "8s")
    emails = lab.send("cap/email", [{"customer_id": f"c-{n}"} for n in range(6)])
    texts = lab.send("cap/sms", [{} for _ in range(6)])
    done = lab.wait(emails + texts, timeout=120)
    assert {r["status"] for r in done} == {"COMPLETED"}
    assert lab.stats().peak == 5                       # 10 allowed by the function, 5 by Hobby
    failed = lab.wait(lab.send("cap/nap", {"days": 8}), timeout=60)
    assert failed["status"] == "FAILED"
    assert "sleeps may last at most seven days on the Hobby (Free) plan" in failed["output"]
    assert lab.wait(lab.send("cap/nap", {"days": 6}), timeout=60)["status"] == "COMPLETED"
    # History: a finished run is forgotten 24 h later, as Hobby's trace history is.
    lab.clock.advance("25h")
    with pytest.raises(LabClientError, match="No run"):
        lab.run(failed["id"])
    assert lab.set_tier(None) is None
    assert lab.wait(lab.send("cap/nap", {"days": 8}), timeout=60)["status"] == "COMPLETED"


def test_hobby_refuses_a_batch_of_50_at_sync_with_the_plans_message(fresh_engine):
    other = Lab()
    try:
        other.start([cap.bulk_write], engine=fresh_engine.url, quiet=True)   # no plan: fine
        with pytest.raises(HostError, match="batch_size_too_large: Configured batch size is "
                                            "too large.*at most 5 events"):
            other.start([cap.bulk_write], engine=fresh_engine.url, tier="hobby", quiet=True)
        other.start([cap.bulk_write], engine=fresh_engine.url, tier="pro", quiet=True)
        with pytest.raises(ValueError, match="hobby"):
            other.set_tier("enterprise")
    finally:
        other.stop()


def test_executions_match_a_hand_count(lab):
    since = lab.clock.now()
    runs = lab.wait(lab.send("cap/pipeline", [{"flaky": True}, {}, {}]), timeout=120)
    assert {r["status"] for r in runs} == {"COMPLETED"}
    # By hand: 3 runs x 4 steps; transform of the flaky run failed twice before it passed.
    counted = lab.executions("pipeline", since=since)
    assert (counted.runs, counted.steps, counted.attempts, counted.executions) == (3, 12, 14, 17)
    row = counted.by_function.set_index("function").loc["capab-pipeline"]
    assert row["executions"] == 17
    rebuilt = billing.from_traces(lab.api, "capab-pipeline", since, None)
    assert (rebuilt.runs, rebuilt.steps, rebuilt.attempts) == (3, 12, 14)
    assert real_view(lab).executions("pipeline", since=since).executions == 17
    assert lab.executions("pipeline", until=since).runs == 0


def test_rerun_from_step_reuses_the_memo_and_replay_does_not(lab):
    since = lab.clock.now()
    cap.SETTINGS["load_fails"] = True
    failed = lab.wait(lab.send("cap/pipeline", [{"n": 1}, {"n": 2}]), timeout=120)
    assert [r["status"] for r in failed] == ["FAILED", "FAILED"]
    assert lab.failed_step(failed[0]["id"]) == "load"
    cap.SETTINGS["load_fails"] = False                  # the fix is deployed

    from_step = lab.wait(lab.rerun(failed[0]["id"], from_step="load"), timeout=60)
    assert from_step["status"] == "COMPLETED"
    assert cap.executed(from_step["id"]) == ["load", "notify"]
    assert lab.trace(from_step["id"]).set_index("step")["source"]["extract"] == "memo hit"
    again = lab.wait(lab.rerun(failed[0]["id"]), timeout=60)         # plain Rerun
    assert cap.executed(again["id"]) == ["extract", "transform", "load", "notify"]

    replayed = lab.wait(lab.replay("pipeline", since=since), timeout=120)
    assert len(replayed) == 2
    for run in replayed:                                # bulk Replay starts from the start
        assert cap.executed(run["id"]) == ["extract", "transform", "load", "notify"]
        assert "memo hit" not in set(lab.trace(run["id"])["source"])
    assert lab.replay("pipeline", since=since, error_contains="no such error") == []
    assert len(lab.replay("pipeline", since=since, error_contains="SCHEMA MISMATCH")) == 2
    with pytest.raises(ValueError, match="Unknown run status"):
        lab.replay("pipeline", status=["BROKEN"])


def test_rerun_failed_goes_from_each_failed_step(lab):
    since = lab.clock.now()
    cap.SETTINGS["load_fails"] = True
    lab.wait(lab.send("cap/pipeline", [{"n": 3}, {"n": 4}]), timeout=120)
    cap.SETTINGS["load_fails"] = False
    new_ids = lab.rerun_failed("pipeline", since=since)
    assert len(new_ids) == 2
    for run in lab.wait(new_ids, timeout=60):
        assert run["status"] == "COMPLETED"
        assert cap.executed(run["id"]) == ["load", "notify"]


def test_replay_run_by_run_on_a_real_server(lab):
    since = lab.clock.now()
    cap.SETTINGS["load_fails"] = True
    lab.wait(lab.send("cap/pipeline", [{"n": 5}]), timeout=120)
    cap.SETTINGS["load_fails"] = False
    (new_id,) = real_view(lab).replay("pipeline", since=since)
    run = lab.wait(new_id, timeout=60)
    assert run["status"] == "COMPLETED"
    assert cap.executed(run["id"]) == ["extract", "transform", "load", "notify"]
    with pytest.raises(NotOnRealServer, match="no plans"):
        real_view(lab).set_tier("hobby")


def test_invoke_a_cron_function_and_cron_runs_cannot_be_rerun(lab):
    run = lab.wait(lab.invoke("nightly"), timeout=60)
    assert json.loads(run["output"]) == {"event": "inngest/function.invoked",
                                         "scheduledAt": None}
    assert lab.wait(lab.rerun(run["id"]), timeout=60)["status"] == "COMPLETED"
    # 09:00 in Karachi is 04:00 UTC: move the clock past the next one.
    now = lab.clock.now()
    tick = now.replace(hour=4, minute=0, second=0, microsecond=0)
    if tick <= now:
        tick += datetime.timedelta(days=1)
    lab.clock.advance(to=tick + datetime.timedelta(minutes=1))
    cron_runs = [r for r in lab.wait([r["id"] for r in lab.runs(function="nightly")],
                                     timeout=60) if r["eventName"] == "inngest/scheduled.timer"]
    assert len(cron_runs) == 1
    assert json.loads(cron_runs[0]["output"])["scheduledAt"] == tick.strftime("%Y-%m-%dT%H:%M:%SZ")
    with pytest.raises(LabClientError, match="cron-triggered runs cannot be rerun"):
        lab.rerun(cron_runs[0]["id"])
    with pytest.raises(LabClientError, match="cron-triggered runs cannot be rerun"):
        real_view(lab).rerun(cron_runs[0]["id"])
    replayed = lab.replay("nightly", status="COMPLETED")     # the cron run is skipped
    assert len(replayed) == 2 and cron_runs[0]["id"] not in replayed
    real = real_view(lab)
    assert lab.wait(real.invoke("nightly", {"note": "by hand"}), timeout=60)["status"] == "COMPLETED"


def test_events_show_the_runs_they_started_and_the_ones_that_matched_nothing(lab):
    [sent] = lab.send("cap/emial", {"customer_id": "typo"})           # nobody listens
    [good] = lab.send("cap/sms", {})
    lab.wait(good, timeout=60)
    unmatched = lab.events(unmatched=True)
    assert sent in unmatched.ids and good not in unmatched.ids
    (event,) = [e for e in lab.events(name="cap/sms") if e["id"] == good]
    assert len(event["runs"]) == 1 and event["functions"] == ["capab-send-sms"]
    assert "started no run" in unmatched._repr_html_()
    assert list(unmatched.frame().columns) == list(unmatched.COLUMNS)
    invoked = lab.invoke("send-sms")
    assert invoked in lab.events(name="inngest/function.invoked")[0]["runs"]
    assert [e["id"] for e in real_view(lab).events(unmatched=True)] == unmatched.ids


def test_bad_input_is_explained(lab):
    with pytest.raises(ValueError, match="duration"):
        lab.chaos.slow_step("send-email", "deliver", 0)
    with pytest.raises(ValueError, match="times"):
        lab.chaos.slow_step("send-email", "deliver", "1s", times=0)
    with pytest.raises(ValueError, match="dict"):
        lab.invoke("nap", data=[1])
    with pytest.raises(LabClientError, match="No function with slug"):
        lab.invoke("no-such-function")
    with pytest.raises(LabClientError, match="invalid expression"):
        lab.stats("send-email", key="event.data.(")
    with pytest.raises(LabClientError, match="not found"):
        lab.executions("nope")
    r = httpx.post(lab.api.url + "/lab/v1/replay", json={"function": "capab-pipeline",
                                                       "statuses": ["NOPE"]})
    assert r.status_code == 400 and "unknown run status" in r.json()["error"]
