"""Notebook 25's claim, tested: the Worker's email flow on Inngest and on DBOS (real DBOS, its
worker a real process, checkpoints in the Worker's Postgres) survives the same crash, a SIGKILL
of the worker process between the agent step and the draft step, and both engines leave the
same audit rows, with the agent run once."""

from __future__ import annotations

import pytest

from lab_support.lab_object import Lab
from lab_support.swap import crash, dbos_side, email_steps, inngest_email
from lab_support.swap.side_by_side import crash_both, restart_host


pytest_plugins = ["worker_helpers"]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

EMAIL = {"customer_id": "c-test-2", "subject": "Refund",
         "body": "Hi, my refund hasn't arrived and I'm getting worried."}


@pytest.fixture
def swap_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(crash.ENV, str(tmp_path / "swap"))
    return tmp_path


@pytest.fixture
def inngest_lab(engine, worker_db, swap_dir):
    lab = Lab()
    lab.start(inngest_email.functions, host="process", engine=engine.url, quiet=True)
    try:
        yield lab
    finally:
        lab.stop(quiet=True)


@pytest.fixture
def dbos(worker_db, swap_dir):
    side = dbos_side.DBOSSide(log_path=swap_dir / "dbos-worker.log")
    side.reset()
    try:
        yield side.start()
    finally:
        side.stop()


def test_both_engines_resume_after_the_same_crash_with_the_same_audit_rows(inngest_lab, dbos):
    crash.arm("before-save-draft", "inngest")
    event_ids = inngest_lab.send("swap/email.received", EMAIL, id="test-swap-inngest")
    crash.wait_fired("before-save-draft", "inngest", timeout=120)
    restart_host(inngest_lab)
    run = inngest_lab.wait(event_ids[0], timeout=120)
    assert run["status"] == "COMPLETED", run

    crash.arm("before-save-draft", "dbos")
    workflow_id = dbos.send("test-swap-dbos", EMAIL)
    assert dbos.worker.wait_exit(timeout=120) == -9     # killed by its own crash point
    with pytest.raises(dbos_side.DBOSSideError, match="no DBOS worker is running"):
        dbos.wait(workflow_id, timeout=5)
    dbos.start()                                        # launch() recovers the workflow
    assert dbos.wait(workflow_id, timeout=120).status == "SUCCESS"

    for engine in ("inngest", "dbos"):
        ran = crash.executions(engine)
        assert ran["CRASH at before-save-draft"] == 1, (engine, ran)
        assert (ran["run-agent"], ran["save-draft-reply"], ran["audit-handled"]) == (1, 1, 1), \
            (engine, ran)
    inngest_rows = email_steps.audit_trail("test-swap-inngest")
    dbos_rows = email_steps.audit_trail("test-swap-dbos")
    assert [r["action"] for r in inngest_rows] == ["draft_saved", "email_drafted"], inngest_rows
    assert inngest_rows == dbos_rows
    assert [s["function_name"] for s in dbos.steps(workflow_id)] == list(email_steps.STEPS)


def test_a_crash_after_the_side_effect_repeats_it_on_both_engines(inngest_lab, dbos):
    """Neither engine can know a step's write happened if the process died before the step's
    result was recorded: both run the step again (at least once); write_once fixes both."""
    ids = {"inngest": "test-swap-inngest-late", "dbos": "test-swap-dbos-late"}
    assert crash_both(inngest_lab, dbos, "after-save-draft", EMAIL, ids) == \
        {"inngest": "COMPLETED", "dbos": "SUCCESS"}
    once = {"inngest": "test-swap-inngest-once", "dbos": "test-swap-dbos-once"}
    crash_both(inngest_lab, dbos, "after-save-draft", {**EMAIL, "write_once": True}, once)
    for source in once.values():
        actions = [r["action"] for r in email_steps.audit_trail(source)]
        assert actions == ["draft_saved", "email_drafted"], (source, actions)
    for source in ("test-swap-inngest-late", "test-swap-dbos-late"):
        actions = [r["action"] for r in email_steps.audit_trail(source)]
        assert actions == ["draft_saved", "draft_saved", "email_drafted"], (source, actions)


def test_the_same_email_id_twice_runs_the_flow_once_on_dbos(dbos):
    first = dbos.send("test-swap-dbos-dup", EMAIL)
    second = dbos.send("test-swap-dbos-dup", EMAIL)
    assert first == second
    assert dbos.wait(first, timeout=120).status == "SUCCESS"
    assert crash.executions("dbos")["run-agent"] == 1
