"""Host-side fault injection (``lab_support/host_faults.py``), the chaos a real dev server gets.

The lab is pointed at the embedded engine but told it is a real server, so every chaos rule
goes to the function host, not the engine: SDK → HTTP → engine → host layer → SDK, the same
path a real ``inngest dev`` takes. The embedded engine honours Retry-After like the real one.
"""

from __future__ import annotations

import httpx
import lab_helpers as h
import pytest

from lab_support.client import EngineClient, step_hash
from lab_support.lab_object import Lab

pytestmark = pytest.mark.timeout(240)


class RealLookingClient(EngineClient):
    @property
    def kind(self) -> str:
        return "real"


@pytest.fixture
def host_chaos_lab(engine):
    lab = Lab()
    lab.start(h.FUNCTIONS, engine=engine.url, quiet=True)
    lab.api = RealLookingClient(engine.url)
    lab._configure_host()  # as lab.start does on a real server: Retry-After on retries
    try:
        yield lab
    finally:
        lab.stop()


def _steps(lab, run_id):
    frame = lab.trace(run_id, outputs=False)
    return {row["step"]: row for row in frame.to_dict("records")}


def test_host_settings_follow_the_engine_kind(host_chaos_lab, engine):
    state = httpx.get(host_chaos_lab._host.faults_url, timeout=5).json()
    assert state["retry_after_s"] == host_chaos_lab.retry_after_s == 2.0
    embedded = Lab()
    try:
        embedded.start(h.FUNCTIONS, engine=engine.url, quiet=True)
        assert httpx.get(embedded._host.faults_url, timeout=5).json()["retry_after_s"] is None
    finally:
        embedded.stop()


def test_raise_fails_the_step_before_its_body_runs(host_chaos_lab, tmp_path):
    lab = host_chaos_lab
    rule = lab.chaos.fail_step("order", "charge", times=1, mode="raise")
    assert rule["where"] == "host" and rule["remaining"] == 1
    run = lab.wait(lab.send("lab/order", {"log_dir": str(tmp_path)}), status="Completed",
                   timeout=60)
    assert h.executed(tmp_path, run["id"]) == ["load", "charge", "receipt"]
    assert _steps(lab, run["id"])["charge"]["attempts"] == 2
    assert lab.chaos.rules()[0]["remaining"] == 0


def test_raise_on_the_last_attempt_fails_the_run(host_chaos_lab, tmp_path):
    lab = host_chaos_lab
    lab.chaos.fail_step("order", "charge", times=2, mode="raise")  # order has 2 attempts
    run = lab.wait(lab.send("lab/order", {"log_dir": str(tmp_path)}), status="Failed",
                   timeout=60)
    assert h.executed(tmp_path, run["id"]) == ["load"]
    assert "lab chaos (raise, in the function host)" in lab.run(run["id"])["output"]


def test_http_503_and_timeout_fail_the_call_not_the_body(host_chaos_lab, tmp_path):
    lab = host_chaos_lab
    httpx.put(lab._host.faults_url + "/settings", json={"timeout_s": 0.2}, timeout=5)
    lab.chaos.http_503("order", "load")
    lab.chaos.timeout("order", "charge")
    run = lab.wait(lab.send("lab/order", {"log_dir": str(tmp_path)}), status="Completed",
                   timeout=60)
    assert h.executed(tmp_path, run["id"]) == ["load", "charge", "receipt"]
    steps = _steps(lab, run["id"])
    assert (steps["load"]["attempts"], steps["charge"]["attempts"]) == (2, 2)


def test_lose_response_runs_the_body_twice(host_chaos_lab, tmp_path):
    lab = host_chaos_lab
    lab.chaos.lose_response("order", "load")
    run = lab.wait(lab.send("lab/order", {"log_dir": str(tmp_path)}), status="Completed",
                   timeout=60)
    assert h.executed(tmp_path, run["id"]) == ["load", "load", "charge", "receipt"]
    lab.chaos.clear()
    assert lab.chaos.rules() == []


def test_bad_rules_are_refused_with_a_message(host_chaos_lab):
    lab = host_chaos_lab
    with pytest.raises(ValueError, match="mode must be one of"):
        lab.chaos.fail_step("order", "charge", mode="explode")
    answer = httpx.post(lab._host.faults_url, json={"function": "order", "step": "charge",
                                                     "times": 0}, timeout=5)
    assert answer.status_code == 400 and "times must be" in answer.json()["error"]


def test_retry_after_is_added_to_retryable_sdk_answers(host_chaos_lab, tmp_path):
    lab = host_chaos_lab
    h.SETTINGS["charge_fails"] = True
    try:
        answer = httpx.post(
            lab._host.url, params={"fnId": "labtest-order", "stepId": step_hash("charge")},
            json={"event": {"name": "lab/order", "data": {"log_dir": str(tmp_path)}},
                  "events": [{"name": "lab/order", "data": {}}],
                  "steps": {step_hash("load"): {"data": {"customer": "c-1"}}},
                  "ctx": {"run_id": "01JDRUN0000000000000000000", "attempt": 0,
                          "max_attempts": 2, "disable_immediate_execution": False,
                          "stack": {"stack": [step_hash("load")], "current": 1}},
                  "use_api": False}, timeout=10)
    finally:
        h.SETTINGS["charge_fails"] = False
    assert answer.status_code == 206, answer.text
    assert answer.json()[0]["op"] == "StepError"
    assert answer.headers["retry-after"] == "2"


def test_slow_step_holds_the_answer_on_every_call(host_chaos_lab, tmp_path):
    lab = host_chaos_lab
    rule = lab.chaos.slow_step("order", "charge", 0.5)
    assert (rule["mode"], rule["times"], rule["duration"]) == ("slow", None, 0.5)
    runs = lab.wait(lab.send("lab/order", [{"log_dir": str(tmp_path)}] * 2),
                    status="Completed", timeout=60)
    assert all(h.executed(tmp_path, r["id"]) == ["load", "charge", "receipt"] for r in runs)
    assert lab.chaos.rules()[0]["used"] == 2 and lab.chaos.rules()[0]["remaining"] is None
    lab.chaos.clear()
