"""A wrong answer to one task keeps every other task's points (issue 9, finding 13).

Each course exercise is graded as a submission built from its solution with one task made
wrong (wrong, not crashing: a crash stops the notebook as "Run All" does). Only the checks of
that task may fail.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from lab_support import grade
from lab_support.report import read_csv

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.notebook, pytest.mark.slow]

# notebook -> (text in the solution, its wrong replacement, the checks that must fail)
BROKEN = {
    "00_quick_win_exercise.ipynb": (
        "retries=2,", "retries=4,",  # Task 1: five attempts instead of three
        {"the run failed after 3 attempts of send-confirmation"}),
    "01_events_vs_requests_exercise.ipynb": (
        "    return peak\n", "    return len(arrivals)\n",  # Task 1: a wrong peak
        {"request model at 50/min × 8 s needs 7 connections",
         "event model at 50/min × 10 ms needs 1 connection",
         "peak_open agrees with brute force on random traffic"}),
    "02_cron_triggers_exercise.ipynb": (
        'lambda: f"posted week of {week_of}"', 'lambda: "posted"',  # Task 1: no date posted
        {"each report is for a Monday inside the two weeks"}),
    "03_webhook_triggers_exercise.ipynb": (
        '"id": payload["MessageID"]', '"id": payload["Email"]',  # Task 1: a wrong event id
        {"bounce and complaint become named events"}),
    "04_idempotency_exercise.ipynb": (
        'lab.send("user/signed.up", {"email": email}, id=f"signup-{form_token}")',
        'lab.send("user/signed.up", {"email": email})',  # Task 2: no event id
        {"the double submit started one run and sent one email"}),
    "05_fan_out_exercise.ipynb": (
        'id=f"invite-{team}-{m}"', 'id=f"invite-{ctx.run_id}-{m}"',  # Task 2: ids per run
        {"a repeated request invites nobody twice"}),
    "06_step_run_exercise.ipynb": (
        'reference = await ctx.step.run("make-reference", new_reference)',
        'reference = new_reference()',  # Task 2: the reference made outside a step
        {"the record and every email attempt share one reference"}),
    "07_memoization_exercise.ipynb": (
        'f"load-customer-{customer_id}"', '"load-customer"',  # Task 2: positional slots
        {"every customer in the digest got their own record",
         "the digest still matches with another ticket list"}),
    "08_sleep_and_wait_exercise.ipynb": (
        'if_exp="async.data.user_id == event.data.user_id", timeout=lab.days(7))',
        'timeout=lab.days(7))',  # Task 1: any user's upgrade ends every trial
        {"an upgrade resumes only its own trial; the other ends after 7 days"}),
    "09_retries_exercise.ipynb": (
        'fn_id="score-lead", retries=1,', 'fn_id="score-lead", retries=3,',  # Task 2: 4 lookups
        {"the lead is saved without a company after two lookups"}),
    "10_ai_calls_exercise.ipynb": (
        'label = await ctx.step.run("classify", call_model, f"Classify this ticket: {text}")',
        'label = await call_model(f"Classify this ticket: {text}")',  # Task 2: model unwrapped
        {"a twice-failing router costs one model request",
         "the model's answer is memoized, not recomputed"}),
    "14_replay_cancel_exercise.ipynb": (
        'return lab.rerun_failed("answer-ticket", since=since, until=until)',
        'return lab.replay("answer-ticket", since=since, until=until)',  # Task 1: from the top
        {"every ticket of the window answered once, no draft paid twice"}),
    "15_hitl_gates_exercise.ipynb": (
        'return lab.send("escalation/decision.made", data, id=f"decision-{request_id}")',
        'return lab.send("escalation/decision.made", data)',  # Task 2: no decision id
        {"a double click is recorded once; a forged id is refused",
         "two reviewers one after the other: the first decision is the one on record"}),
}


def broken_submission(folder: Path, name: str, old: str, new: str) -> Path:
    nb = nbformat.read(str(ROOT / "solutions" / name), as_version=4)
    hits = 0
    for cell in nb.cells:
        if cell.cell_type == "code" and old in cell.source and "HIDDEN CHECK" not in cell.source \
                and "lab.check" not in cell.source:
            cell.source = cell.source.replace(old, new)
            hits += 1
    assert hits == 1, f"{name}: {old!r} found in {hits} task cells"
    target = folder / name.split("_exercise")[0] / name
    target.parent.mkdir(parents=True)
    nbformat.write(nb, str(target))
    return target.parent


def test_a_wrong_task_costs_only_its_own_checks(tmp_path):
    submissions = [broken_submission(tmp_path / "in", name, old, new)
                   for name, (old, new, _) in BROKEN.items()]
    code = grade.main([*map(str, submissions), "--out", str(tmp_path / "out"),
                       "--timeout", "240"])
    assert code == 0
    rows = read_csv(tmp_path / "out" / "grades.csv")
    for name, (_, _, must_fail) in BROKEN.items():
        mine = [r for r in rows if r.notebook == name]
        execution = next(r for r in mine if r.check == grade.EXECUTION_ROW)
        assert execution.status == "completed", (name, execution)
        failed = {r.check for r in mine if r.check != grade.EXECUTION_ROW and r.status != "passed"}
        assert failed == must_fail, (name, failed, [r.hint for r in mine if r.status != "passed"])
        assert all(r.points == r.max for r in mine if r.check not in must_fail)
