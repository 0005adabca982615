"""Re-running cells is safe: chaos rules never leak into a run nobody meant, lab.reset
starts the demos over without a kernel restart, and lab.stop says what it stopped.

Driven through the real path: the lab object, the SDK host, HTTP, the embedded engine."""

from __future__ import annotations

import types

import lab_helpers as h
import pytest

from lab_support.client import EngineClient, NotOnRealServer
from lab_support.lab_object import Lab

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def lab(fresh_engine):
    the_lab = Lab()
    the_lab.start(h.FUNCTIONS, engine=fresh_engine.url, quiet=True)
    try:
        yield the_lab
    finally:
        the_lab.stop(quiet=True)
        h.SETTINGS["charge_fails"] = False


def charge_attempts(lab, run) -> int:
    return int(lab.trace(run["id"]).set_index("step").loc["charge", "attempts"])


def test_a_rule_belongs_to_the_first_run_it_hits(lab, tmp_path):
    # order has retries=1: two attempts. Three armed failures: the first run uses two and
    # fails; the third failure stays with that run and never reaches the next one.
    rule = lab.chaos.fail_step("order", "charge", times=3, keep=True)
    assert rule["scope"] == "run" and rule["run_id"] is None
    first = lab.wait(lab.send("lab/order", {"log_dir": str(tmp_path)}), timeout=60)
    assert first["status"] == "FAILED"
    (left,) = lab.chaos.rules()
    assert (left["remaining"], left["run_id"]) == (1, first["id"])
    second = lab.wait(lab.send("lab/order", {"log_dir": str(tmp_path)}), timeout=60)
    assert second["status"] == "COMPLETED" and charge_attempts(lab, second) == 1


def test_scope_any_spreads_failures_over_runs(lab, tmp_path):
    lab.chaos.fail_step("order", "charge", times=3, scope="any", keep=True)
    first = lab.wait(lab.send("lab/order", {"log_dir": str(tmp_path)}), timeout=60)
    second = lab.wait(lab.send("lab/order", {"log_dir": str(tmp_path)}), timeout=60)
    assert first["status"] == "FAILED"
    assert second["status"] == "COMPLETED" and charge_attempts(lab, second) == 2
    with pytest.raises(ValueError, match="scope"):
        lab.chaos.fail_step("order", "charge", scope="forever")


class FakeShell:
    """Just enough of IPython for the end-of-cell hook."""

    def __init__(self) -> None:
        self.hooks: list = []
        self.events = types.SimpleNamespace(register=lambda name, fn: self.hooks.append((name, fn)))

    def end_cell(self) -> None:
        for name, fn in self.hooks:
            if name == "post_run_cell":
                fn(None)


def test_a_rule_no_run_reached_ends_with_its_cell(lab, tmp_path, monkeypatch, capsys):
    import IPython

    shell = FakeShell()
    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)
    # Cell 1: a typo in the step name; no run reaches it.
    lab.chaos.fail_step("order", "chrage", times=2)
    shell.end_cell()
    assert lab.chaos.rules() == []
    assert "no run reached step 'chrage'" in capsys.readouterr().out
    # Cell 2: armed and used in the same cell, as the notebooks do: it stays with its run.
    lab.chaos.fail_step("order", "charge", times=1)
    run = lab.wait(lab.send("lab/order", {"log_dir": str(tmp_path)}), timeout=60)
    shell.end_cell()
    assert run["status"] == "COMPLETED" and charge_attempts(lab, run) == 2
    assert [r["used"] for r in lab.chaos.rules()] == [1]
    # keep=True: armed for a later cell.
    lab.chaos.fail_step("order", "receipt", times=1, keep=True)
    shell.end_cell()
    assert [r["step"] for r in lab.chaos.rules()][-1] == "receipt"


def test_new_code_starts_without_leftover_faults(lab, capsys):
    lab.chaos.fail_step("order", "charge", times=2, keep=True)
    lab.update(h.FUNCTIONS)
    assert lab.chaos.rules() == []
    assert "lab.update: removed 1 chaos rule(s) armed earlier" in capsys.readouterr().out
    lab.chaos.fail_step("order", "charge", times=2, keep=True)
    lab.start(h.FUNCTIONS, engine=lab._engine_arg, quiet=True)
    assert lab.chaos.rules() == []


def test_reset_forgets_runs_and_event_ids_but_keeps_the_functions(lab, tmp_path, capsys):
    ids = lab.send("lab/order", {"log_dir": str(tmp_path)}, id="order-once")
    run = lab.wait(ids, timeout=60)
    duplicate = lab.send("lab/order", {}, id="order-once")[0]
    assert all(r["status"] == "SKIPPED" for r in lab.runs(event_id=duplicate)), \
        "a duplicate id starts no real run"
    lab.chaos.fail_step("order", "charge", keep=True)
    lab.reset()
    assert "forgot every run" in capsys.readouterr().out
    assert lab.runs() == [] and lab.chaos.rules() == []
    again = lab.wait(lab.send("lab/order", {"log_dir": str(tmp_path)}, id="order-once"),
                     timeout=60)
    assert again["status"] == "COMPLETED" and again["id"] != run["id"], \
        "after a reset the same event id is new again"
    assert "labtest-order" in lab.status()["functions"]


def test_reset_and_stop_before_start_and_on_a_real_server(fresh_engine, capsys):
    idle = Lab()
    idle.reset()
    idle.stop()
    out = capsys.readouterr().out
    assert "nothing to reset yet" in out and "lab.stop: nothing was running." in out

    class RealLooking(EngineClient):
        kind = "real"

    idle.api = RealLooking(fresh_engine.url)
    try:
        sent = idle.api.send([{"name": "labtest/kept", "data": {}, "id": "kept-1"}])
        idle.reset()  # a setup cell's reset must not stop a notebook on a real server
        out = capsys.readouterr().out
        assert "[real dev server] lab.reset clears the lab's embedded engine only" in out, out
        assert "start it again" in out
        assert sent[0] in [e["id"] for e in idle.api.events(names=["labtest/kept"])], \
            "lab.reset on a real server must leave the server's events alone"
    finally:
        idle.api.close()
        idle.api = None


def test_stop_says_what_it_stopped(capsys):
    own = Lab()
    own.start([h.order], engine="embedded", memory=True, quiet=True)
    host, url = own._host.url, own.api.url
    own.stop()
    out = capsys.readouterr().out
    assert f"the function host (thread, {host})" in out
    assert f"the embedded engine at {url} (its runs were in memory and are gone)" in out
    own.stop()
    assert "nothing was running" in capsys.readouterr().out
