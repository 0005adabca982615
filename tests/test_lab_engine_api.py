"""The lab object against the embedded engine: start, observe, fix and rerun, cancel, clock."""

from __future__ import annotations

import datetime
import json

import httpx
import inngest
import lab_helpers as h
import pytest

from lab_support.client import LabClientError
from lab_support.host import HostError, free_port
from lab_support.lab_object import Lab
from lab_support.waiting import RunWaitTimeout

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def lab(engine):
    """A Lab on the shared in-memory engine (the URL path of engine picking)."""
    the_lab = Lab()
    the_lab.start(h.FUNCTIONS, engine=engine.url, quiet=True)
    try:
        yield the_lab
    finally:
        the_lab.stop()
        h.SETTINGS["charge_fails"] = False


def test_status_names_the_engine_and_the_functions(lab, capsys):
    info = lab.status()
    assert info["engine"] == "embedded"
    assert set(info["functions"]) == {"labtest-order", "labtest-approval", "labtest-slow"}
    assert info["host"].endswith("/api/inngest")
    assert "lab ready" in capsys.readouterr().out
    assert httpx.get(info["host"]).status_code == 200


def test_a_run_completes_and_its_trace_says_executed(lab, tmp_path):
    ids = lab.send("lab/order", {"customer": "c-7", "log_dir": str(tmp_path)})
    run = lab.wait(ids, timeout=60)
    assert run["status"] == "COMPLETED"
    trace = lab.trace(run["id"])
    assert list(trace["step"]) == ["load", "charge", "cool-off", "receipt"]
    assert set(trace["source"]) == {"executed"}
    assert "c-7" in trace.loc[0, "output"]
    assert h.executed(tmp_path, run["id"]) == ["load", "charge", "receipt"]
    assert run["id"] in lab.runs(event_id=ids[0]).ids
    assert run["id"] in lab.runs(function="order", status="completed").ids


def test_fix_the_bug_then_rerun_from_the_failed_step_reuses_earlier_steps(lab, tmp_path):
    h.SETTINGS["charge_fails"] = True
    try:
        run = lab.wait(lab.send("lab/order", {"log_dir": str(tmp_path)}), timeout=60)
    finally:
        h.SETTINGS["charge_fails"] = False  # the fix
    assert run["status"] == "FAILED"
    failed = lab.trace(run["id"])
    assert failed.set_index("step").loc["charge", "status"] == "FAILED"
    assert failed.set_index("step").loc["charge", "attempts"] == 2  # retries=1
    assert lab.failed_step(run["id"]) == "charge"
    new_id = lab.rerun(run["id"], from_step=lab.failed_step(run["id"]))
    replayed = lab.wait(new_id, timeout=60)
    assert replayed["status"] == "COMPLETED"
    sources = lab.trace(new_id).set_index("step")["source"]
    assert sources["load"] == "memo hit" and sources["charge"] == "executed"
    assert h.executed(tmp_path, new_id) == ["charge", "receipt"]  # load did not run again


def test_rerun_from_a_named_step_runs_it_and_what_follows(lab, tmp_path):
    run = lab.wait(lab.send("lab/order", {"log_dir": str(tmp_path)}), timeout=60)
    assert lab.failed_step(run["id"]) is None
    new_id = lab.rerun(run["id"], from_step="receipt")
    assert lab.wait(new_id, timeout=60)["status"] == "COMPLETED"
    assert h.executed(tmp_path, new_id) == ["receipt"]


def test_update_swaps_code_and_rerun_failed_picks_up_every_failure(lab, tmp_path):
    since = lab.clock.now()

    def make(buggy: bool):
        @h.client.create_function(fn_id="order", trigger=inngest.TriggerEvent(event="lab/order"),
                                  retries=0)
        async def order(ctx: inngest.Context):
            h.note(ctx, "v-buggy" if buggy else "v-fixed")
            if buggy:
                raise RuntimeError("bug in version 1")
            return "fixed"
        return order

    lab.update([make(True), h.approval, h.slow])
    runs = lab.wait(lab.send("lab/order", [{"log_dir": str(tmp_path)}] * 2), timeout=60)
    assert [r["status"] for r in runs] == ["FAILED", "FAILED"]
    lab.update([make(False), h.approval, h.slow])
    new_ids = lab.rerun_failed("order", since=since)
    assert len(new_ids) == 2
    assert {r["output"] for r in lab.wait(new_ids, timeout=60)} == {'"fixed"'}
    lab.update(h.FUNCTIONS)


def test_chaos_fails_a_step_and_explains_itself(lab, tmp_path):
    assert "Fault injection" in repr(lab.chaos)
    lab.chaos.fail_step("order", "charge", times=1)
    run = lab.wait(lab.send("lab/order", {"log_dir": str(tmp_path)}), timeout=60)
    assert run["status"] == "COMPLETED"  # one injected failure, one retry left
    trace = lab.trace(run["id"]).set_index("step")
    assert trace.loc["charge", "attempts"] == 2 and trace.loc["charge", "source"] == "retried"
    assert lab.chaos.rules() == [] or all(r.get("remaining", 0) == 0 for r in lab.chaos.rules())
    with pytest.raises(ValueError, match="mode"):
        lab.chaos.fail_step("order", "charge", mode="explode")


def test_cancel_a_waiting_run(lab):
    run = lab.wait(lab.send("lab/approval", {"ticket": "t-cancel"}), status="running", timeout=60)
    lab.cancel(run["id"])
    assert lab.wait(run["id"], timeout=30)["status"] == "CANCELLED"


def test_wait_for_the_wrong_status_fails_with_a_reason(lab):
    run = lab.wait(lab.send("lab/approval", {"ticket": "t-wrong"}), status="running", timeout=60)
    lab.cancel(run["id"])
    with pytest.raises(RuntimeError, match="will never be COMPLETED"):
        lab.wait(run["id"], status="completed", timeout=30)


def test_wait_timeout_says_what_to_do(lab):
    ids = lab.send("lab/approval", {"ticket": "t-timeout"})
    with pytest.raises(RunWaitTimeout, match="lab.clock.advance"):
        lab.wait(ids, timeout=1)
    with pytest.raises(ValueError, match="neither a run id nor an event id"):
        lab.wait("01J00000000000000000000000", timeout=1)
    lab.cancel(lab.runs(event_id=ids[0])[0]["id"])


def test_bulk_cancel_with_an_expression(lab):
    since = lab.clock.now() - datetime.timedelta(seconds=1)
    ids = lab.send("lab/approval", [{"ticket": f"b-{i}", "vip": i == 0} for i in range(3)])
    runs = lab.wait(ids, status="running", timeout=60)
    cancelled = lab.bulk_cancel("approval", since=since, if_exp="event.data.vip == false")
    assert sorted(cancelled) == sorted(r["id"] for r in runs[1:])
    assert lab.run(runs[0]["id"])["status"] == "RUNNING"
    assert lab.bulk_cancel("approval", since=since) == [runs[0]["id"]]


def test_clock_advance_reaches_a_wait_timeout(lab):
    assert "virtual" in repr(lab.clock)
    before = lab.clock.now()
    run = lab.wait(lab.send("lab/approval", {"ticket": "t-clock"}), status="running", timeout=60)
    lab.clock.advance(datetime.timedelta(days=1, hours=1))
    done = lab.wait(run["id"], timeout=60)
    assert done["status"] == "COMPLETED" and json.loads(done["output"]) == {"approved": False}
    assert lab.clock.now() - before >= datetime.timedelta(days=1)
    with pytest.raises(ValueError, match="either a duration"):
        lab.clock.advance()


def test_hours_are_exact_on_the_embedded_engine(lab):
    assert lab.hours(4) == datetime.timedelta(hours=4)
    assert lab.minutes(30) == datetime.timedelta(minutes=30)


def test_watch_returns_lanes_outside_a_kernel(lab, tmp_path, capsys):
    ids = lab.send("lab/order", [{"customer": "w1", "log_dir": str(tmp_path)},
                                 {"customer": "w2", "log_dir": str(tmp_path)}])
    lanes = lab.watch(ids, lane="event.data.customer", timeout=60)
    assert sorted(lane.lane for lane in lanes) == ["w1", "w2"]
    assert all(lane.status == "COMPLETED" for lane in lanes)
    assert any(s.get("stepOp") == "SLEEP" for s in lanes[0].spans)
    assert "[figure:" in capsys.readouterr().out


def test_start_again_keeps_the_engine_and_its_runs(lab):
    engine_url, old_host = lab.api.url, lab._host.url
    before = len(lab.runs())
    lab.start(h.FUNCTIONS, engine=engine_url, quiet=True)
    assert lab.api.url == engine_url and lab._host.url != old_host
    assert len(lab.runs()) == before
    with pytest.raises(httpx.HTTPError):
        httpx.get(old_host, timeout=1)  # the old host was stopped first


def test_a_taken_port_fails_fast(lab):
    port = int(lab._host.url.split(":")[2].split("/")[0])
    other = Lab()
    with pytest.raises(HostError, match="already in use"):
        other.start(h.FUNCTIONS, engine=lab.api.url, port=port, quiet=True)
    other.stop()


def test_bad_input_is_explained(lab):
    with pytest.raises(TypeError, match="not an Inngest function"):
        Lab().start([lambda: None], engine=lab.api.url, quiet=True)
    with pytest.raises(ValueError, match="event name"):
        lab.send("")
    with pytest.raises(LabClientError, match="No function with slug"):
        lab.runs(function="nope")
    with pytest.raises(RuntimeError, match="host='process'"):
        lab.kill_host()


def test_an_unreachable_engine_fails_fast():
    with pytest.raises(Exception, match="No Inngest dev server answers"):
        Lab().start(h.FUNCTIONS, engine=f"http://127.0.0.1:{free_port()}", quiet=True)
