"""What Inngest bills, counted from the engine's runs: the numbers behind ``lab.executions``.

Inngest's limits page: "An execution is one function run or one step execution. A function
run with five steps uses six executions." The docs do not spell out retries; a retry sends a
new request to the app and runs the step's code again, so each *attempt* counts as one step
execution here. Per run:

* ``runs``: 1 if it started (skipped runs, and runs still queued, never executed);
* ``steps``: the steps it executed (a step that came back from a rerun's memo did not);
  sleeps, waits and invokes count, as on the pricing page ("waits 3 days ... billed as 3
  steps" for run + sleep + run);
* ``attempts``: the step executions including retries (a step with 2 failed attempts and a
  success is 3);
* ``executions`` = runs + attempts (what is billed); runs + steps is the no-retry count.

A window (``since`` / ``until``, engine ms) selects runs by when they were queued.
"""

from __future__ import annotations

from .models import SKIPPED

FIELDS = ("runs", "steps", "attempts", "executions")


def step_attempts(step) -> int:
    """How many times a step executed (a completed step whose last recorded attempt failed
    also had the successful attempt that is not in the list)."""
    tries = len(step.attempts)
    if tries and step.status == "COMPLETED" and step.attempts[-1].get("status") == "FAILED":
        tries += 1
    return max(1, tries)


def executed_steps(run) -> list:
    return [s for s in run.steps.values() if not s.memoized and s.started_at is not None]


def count(engine, function: str | None = None, since_ms: int | None = None,
          until_ms: int | None = None) -> dict:
    rows: dict[str, dict] = {}
    for run in engine.store.runs.values():
        if function is not None and run.fn_slug != function:
            continue
        if run.status == SKIPPED or run.skip_reason or run.started_at is None:
            continue
        if (since_ms is not None and run.queued_at < since_ms) or \
                (until_ms is not None and run.queued_at > until_ms):
            continue
        steps = executed_steps(run)
        row = rows.setdefault(run.fn_slug, {"function": run.fn_slug, "runs": 0, "steps": 0,
                                            "attempts": 0, "executions": 0})
        row["runs"] += 1
        row["steps"] += len(steps)
        row["attempts"] += sum(step_attempts(s) for s in steps)
    for row in rows.values():
        row["executions"] = row["runs"] + row["attempts"]
    by_function = sorted(rows.values(), key=lambda r: r["function"])
    totals = {name: sum(r[name] for r in by_function) for name in FIELDS}
    return {**totals, "by_function": by_function}
