"""Execute the pilot notebooks headless with papermill against a fresh embedded engine.

* every concept notebook in ``notebooks/`` and every solution in ``solutions/`` runs to the end
  without an error, and every ``lab.check`` in a solution passes;
* every learner exercise in ``exercises/`` stops at its first ``NotImplementedError`` (it
  neither hangs nor fails earlier for another reason).

Each notebook gets its own engine (virtual clock, in memory) and its own papermill subprocess
with a hard timeout, like the grader does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from lab_support.checks import CHECK_MIMETYPE
from lab_support.engine_process import EngineProcess

ROOT = Path(__file__).resolve().parents[1]
CELL_TIMEOUT_S = 180
PROCESS_TIMEOUT_S = 420

pytestmark = [pytest.mark.notebook, pytest.mark.slow, pytest.mark.timeout(PROCESS_TIMEOUT_S + 60)]


def run_papermill(source: Path, out_dir: Path, engine_url: str, *, as_grader: bool):
    """Execute ``source`` into ``out_dir``; returns (exit code, executed notebook, log text)."""
    executed = out_dir / source.name
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONUNBUFFERED="1")
    env.pop("INNGEST_DEV", None)
    cmd = [sys.executable, "-m", "papermill", str(source), str(executed), "-k", "python3",
           "--cwd", str(ROOT), "--no-progress-bar", "--execution-timeout", str(CELL_TIMEOUT_S)]
    if as_grader:  # solutions and exercises read the engine from the injected parameter
        cmd += ["-p", "grading", "True", "-r", "engine_url", engine_url]
    else:  # concept notebooks call lab.start() plainly; INNGEST_DEV points it at our engine
        env["INNGEST_DEV"] = engine_url
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                              timeout=PROCESS_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{source.name} did not finish within {PROCESS_TIMEOUT_S} s "
                    f"(papermill output: {str(exc.stderr)[-2000:]})")
    nb = nbformat.read(str(executed), as_version=4) if executed.exists() else None
    return proc.returncode, nb, proc.stderr[-4000:]


def errors(nb) -> list[tuple[str, str]]:
    return [(out.get("ename", ""), out.get("evalue", ""))
            for cell in nb.cells if cell.cell_type == "code"
            for out in cell.get("outputs", []) if out.get("output_type") == "error"]


def check_records(nb) -> list[dict]:
    return [out["data"][CHECK_MIMETYPE]
            for cell in nb.cells if cell.cell_type == "code"
            for out in cell.get("outputs", []) if CHECK_MIMETYPE in out.get("data", {})]


# What each concept notebook claims in its prose and predictions, as printed by its own demos.
# If the engine's behaviour drifts, the notebook would teach something false: fail here.
CLAIMS = {
    "00_quick_win.ipynb": [
        "step bodies run by this attempt: {'compose-greeting': 1, 'compose-farewell': 5}",
        "step bodies run by the rerun from the failed step: {'compose-farewell': 1}",
        "step bodies run by a plain rerun: {'compose-greeting': 1, 'compose-farewell': 1}",
    ],
    "01_events_vs_requests.ipynb": [
        "event model, peak open parser connections: 1",
        "50 drafts; 50 save-draft executions",
    ],
    "02_cron_triggers.ipynb": ["7 daily runs; 35 customer checks"],
    "03_webhook_triggers.ipynb": [
        "runs for the Stripe event: 1", "runs for our own event:    0", "runs for this event: []",
    ],
    "04_idempotency.ipynb": [
        "step bodies run: {'lookup-order': 1, 'issue-provider-refund': 1, 'audit-refund': 1}",
        "money moved: 5000 cents for a 2500-cent refund",
        "provider calls: 2 | money moved for ch_7300: 2500 cents",
    ],
    "14_replay_cancel.ipynb": [
        "runs between 14:00 and 18:00: 59 (47 failed, 12 completed)",
        "where they failed: {'escalate-with-context': 47}",
        "failed before 14:00 (another cause): [\"no customer 'c-999' in the CRM\"]",
        "at 18:25: 47 still failed; step bodies run since 18:00: 0",
        "the filter finds 47 runs",
        "rerun before the fix: FAILED - escalate-with-context: SKILL.md has no trigger matching",
        "rerun from the failed step: 47 runs, {'COMPLETED': 47}",
        "agent calls: 0 ($0.00); executions: 188 = 47 runs + 141 step executions",
        "replies per email in the incident window: {1: 59}",
        "agent calls: 47 ($9.40); executions: 329 = 47 runs + 282 step executions",
        "replies per escalated email now: {2: 47}",
        "replay-all of the day's completed runs: 15 runs; agent calls 15; summaries in v2: 15; "
        "new replies: 0",
        "runs started by the re-fired event: 0",
        "cancelled: ['c-201', 'c-202', 'c-203', 'c-206']",
        "c-301 CANCELLED ['welcome', 'day 3']",
        "c-302 COMPLETED ['welcome', 'day 3', 'day 7', 'day 14']",
        "run: CANCELLED | ledger entries: [{'invoice': 'inv-77', 'amount': 12900, "
        "'status': 'complete'}] | receipts: []",
    ],
    "15_hitl_gates.ipynb": [
        "waiting at the gate: ['r-101', 'r-102', 'r-103', 'r-104', 'r-105', 'r-106']",
        '"decided_by": "auto"', '"decided_by": "chen"',
        'r-102 {"decided_by": "bilal", "status": "rejected_by_human"}',
        'r-103: {"status": "escalated_timeout"}',
        'after the timeout: {"status": "escalated_timeout"} | calls to our code to finish it: 3',
        "the run woke 24 hours after the gate opened: True",
        "steps executing while the gate was open: 0",
        "executions: 6 billed = 1 run(s) + 5 step execution(s)",
        "keyword arguments: FAILED - Step.run() got an unexpected keyword argument 'request'",
        "attribute access: FAILED - 'dict' object has no attribute 'recommends_refund'",
        "no timeout: FAILED - Step.wait_for_event() missing 1 required keyword-only argument: "
        "'timeout'",
        'r-301: {"status": "escalated_timeout"}', "the approval is in the event list: ['dana']",
        'r-302: {"decided_by": "dana"',
        "after a decision for 'R-303': RUNNING - still waiting",
        "record-decision runs: 2; table says rejected by bilal",
        "record-decision runs: 1; table says approved by amina",
        "[hitl-unaudited-timeout]",
        "r-501: FAILED - 'NoneType' object has no attribute 'data' | audit rows for r-501: []",
        'gate with the forged id: {"approval_for": "r-777", "status": "approved"}',
        "forged id, validated: FAILED - request_id",
    ],
}


# What a concept notebook shows only on the embedded engine (virtual clock, plans, cron runs):
# checked here, not in the real-server lane, where those cells say what they would have shown.
EMBEDDED_CLAIMS = {
    "14_replay_cancel.ipynb": [
        "rerun refused: run", "replay of the cron run: []",
        "the same query 25 hours later on Hobby: 0",
    ],
    "15_hitl_gates.ipynb": [
        "Saturday 16:59: run RUNNING, calls to our code since the gate opened: 0",
        "the gate opened Fri 17:00 and the run woke Sat 17:00",
    ],
}


def printed(nb) -> str:
    return "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                   for out in cell.get("outputs", []) if out.get("output_type") == "stream")


@pytest.fixture
def engine_url():
    proc = EngineProcess(memory=True).start()
    try:
        yield proc.url
    finally:
        proc.stop()



@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.ipynb")),
                         ids=lambda p: p.name)
def test_concept_notebook_runs_clean(path, tmp_path, engine_url):
    code, nb, log = run_papermill(path, tmp_path, engine_url, as_grader=False)
    assert code == 0 and nb is not None, f"{path.name} failed: {errors(nb) if nb else ''}\n{log}"
    text = printed(nb)
    claims = CLAIMS.get(path.name, []) + EMBEDDED_CLAIMS.get(path.name, [])
    missing = [claim for claim in claims if claim not in text]
    assert not missing, f"{path.name} no longer shows {missing}; it printed:\n{text}"



@pytest.mark.parametrize("path", sorted((ROOT / "solutions").glob("*.ipynb")),
                         ids=lambda p: p.name)
def test_solution_runs_with_full_marks(path, tmp_path, engine_url):
    code, nb, log = run_papermill(path, tmp_path, engine_url, as_grader=True)
    assert code == 0 and nb is not None, f"{path.name} failed: {errors(nb) if nb else ''}\n{log}"
    records = check_records(nb)
    assert records, "the solution recorded no checks"
    failed = [(r["name"], r.get("message")) for r in records if not r["passed"]]
    assert not failed, failed



@pytest.mark.parametrize("path", sorted((ROOT / "exercises").glob("*.ipynb")),
                         ids=lambda p: p.name)
def test_exercise_stops_at_its_first_placeholder(path, tmp_path, engine_url):
    code, nb, log = run_papermill(path, tmp_path, engine_url, as_grader=True)
    assert code != 0 and nb is not None, f"an untouched exercise should not run to the end\n{log}"
    assert [e[0] for e in errors(nb)] == ["NotImplementedError"], errors(nb)
    assert not [r for r in check_records(nb) if r["passed"]], "no marks for untouched work"
