"""A wrong answer to one task keeps every other task's points (issue 9, finding 13).

Each course exercise is graded as a submission built from its solution with one task made
wrong. Only the checks of that task may fail. A task cell that raises does not stop the
notebook either (the grader goes on, as nbgrader does): ``CRASHING`` keeps one such case.
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
        'cron="0 9 * * 1"', 'cron="0 9 * * *"',  # Task 1: every day, not Mondays
        {"the schedule fires on Mondays at 09:00 UTC, once a week"}),
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
    "24_cost_exercise.ipynb": (
        '    text = f"Invoice {order[\'id\']}: {order[\'amount_cents\'] / 100:.2f} USD"   # pure: no step\n',
        '    text = await ctx.step.run("format", lambda: f"Invoice {order[\'id\']}: '
        '{order[\'amount_cents\'] / 100:.2f} USD")\n',  # Task 1: pure code in a step
        {"five invoices for at most 16 executions, each sent once",
         "the retry did not fetch or send again"}),
    "26_decision_trees_exercise.ipynb": (
        'lab.send("shop/payment.requested", {"order_id": order_id}, id=f"payment-{order_id}")',
        'lab.send("shop/payment.requested", {"order_id": order_id})',  # Task 2: no event id
        {"the double post charged the card once"}),
}


# A task cell that raises: (notebook, text, replacement, the checks that must fail).
CRASHING = ("02_cron_triggers_exercise.ipynb",
            "    lab.clock.advance(timedelta(days=1))", "    pass",  # Task 2: lab.wait([]) raises
            {"the clock passed 14 days and every day's tick ran"})


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
    crash_name, crash_old, crash_new, crash_fails = CRASHING
    crashing = broken_submission(tmp_path / "crash", crash_name, crash_old, crash_new)
    crashing = crashing.rename(crashing.with_name("crashing-task-2"))
    code = grade.main([*map(str, submissions), str(crashing), "--out", str(tmp_path / "out"),
                       "--timeout", "240"])
    assert code == 0
    rows = read_csv(tmp_path / "out" / "grades.csv")
    crashed = [r for r in rows if r.submission == "crashing-task-2"]
    execution = next(r for r in crashed if r.check == grade.EXECUTION_ROW)
    assert execution.status == "error" and "went on" in execution.hint, execution
    lost = {r.check for r in crashed if r.check != grade.EXECUTION_ROW and r.status != "passed"}
    assert lost == crash_fails, [(r.check, r.status, r.hint) for r in crashed]
    rows = [r for r in rows if r.submission != "crashing-task-2"]
    for name, (_, _, must_fail) in BROKEN.items():
        mine = [r for r in rows if r.notebook == name]
        execution = next(r for r in mine if r.check == grade.EXECUTION_ROW)
        assert execution.status == "completed", (name, execution)
        failed = {r.check for r in mine if r.check != grade.EXECUTION_ROW and r.status != "passed"}
        assert failed == must_fail, (name, failed, [r.hint for r in mine if r.status != "passed"])
        assert all(r.points == r.max for r in mine if r.check not in must_fail)
