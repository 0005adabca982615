"""Getting failed work done again, named as Inngest names it.

* **Rerun** (one run): ``rerun(run_id)`` starts a new run of the same function with the same
  triggering event, and *every* step executes again. ``rerun(run_id, from_step=...)`` is
  Rerun from step: the steps before it come back as memo (the embedded engine's trace marks
  them ``memoized``), the named step and everything after it execute.
* **Replay** (bulk): ``replay(function, since, until, status, error_contains)`` reruns a whole
  population from the start, as Inngest's Replay does ("creates new executions"). The
  embedded engine does it in one ``POST /lab/v1/replay``; on a real dev server (which has no
  bulk Replay) it reruns run by run through GraphQL ``rerun``.
* ``rerun_failed(function, since, until)``: every failed run, each from its failed step
  (Decision 8's recovery path).

Cron-triggered runs cannot be rerun (Inngest's rerun docs); the embedded engine refuses, and
here the same rule holds on a real dev server. Replay and rerun_failed skip them and say so.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import tracing
from .client import LabClientError, to_rfc3339
from .display import show
from .runs import normalize_status

if TYPE_CHECKING:
    from .lab_object import Lab

CRON_RERUN = ("run {run} was started by its cron schedule, and cron-triggered runs cannot be "
              "rerun (as on Inngest); invoke the function instead (lab.invoke), or let the "
              "next tick run")


def failed_step(api, run_id: str) -> str | None:
    span = tracing.failed_step(api.trace(run_id, settle=True))
    return span.get("name") if span else None


def _is_cron(api, run_id: str) -> bool:
    return bool(api.trigger(run_id).get("cron"))


def rerun(lab: "Lab", run_id: str, from_step: str | None = None) -> str:
    api = lab._require_engine()
    if api.kind != "embedded" and _is_cron(api, run_id):
        raise LabClientError(CRON_RERUN.format(run=run_id))   # the engine says it itself
    if from_step is None:
        return api.rerun(run_id)
    if not isinstance(from_step, str) or not from_step:
        raise ValueError("from_step is a step id as written in ctx.step.run('<id>', ...)")
    for span in tracing.step_spans(api.trace(run_id, settle=True)):
        if span.get("name") == from_step:
            return api.rerun(run_id, span.get("stepID"))
    # Not in the trace (it never started): the engine takes the step's hashed id.
    return api.rerun(run_id, hashlib.sha1(from_step.encode()).hexdigest())


def rerun_failed(lab: "Lab", function: Any, since: datetime | None,
                 until: datetime | None) -> list[str]:
    api = lab._require_engine()
    new_ids, skipped = [], []
    for run in reversed(lab.runs(function=function, status="FAILED", since=since, until=until)):
        if _is_cron(api, run["id"]):
            skipped.append(run["id"])
            continue
        # One trace per run: the failed span already carries the step id the rerun needs.
        span = tracing.failed_step(api.trace(run["id"], settle=True))
        step_id = span and (span.get("stepID") or hashlib.sha1(span["name"].encode()).hexdigest())
        new_ids.append(api.rerun(run["id"], step_id or None))
    _say(f"reran {len(new_ids)} failed run(s) from their failed step", skipped)
    return new_ids


def replay(lab: "Lab", function: Any, since: datetime | None, until: datetime | None,
           status: Any, error_contains: str | None) -> list[str]:
    api = lab._require_engine()
    slug = lab._slug(function)
    statuses = normalize_status(status if status is not None else ("FAILED",)) or ["FAILED"]
    if error_contains is not None and not isinstance(error_contains, str):
        raise ValueError("error_contains is a piece of the error text, e.g. 'timeout'")
    if api.kind == "embedded":
        body = {"function": slug, "since": to_rfc3339(since), "until": to_rfc3339(until),
                "statuses": statuses, "error_contains": error_contains}
        result = api.lab_call("POST", "replay", "lab.replay", body)["data"]
        _say(f"replayed {len(result['run_ids'])} run(s) of {result['function']} from the start",
             [s["run_id"] for s in result.get("skipped", [])])
        return list(result["run_ids"])
    # A real dev server has no bulk Replay: select the runs, then rerun each from the start.
    needle = (error_contains or "").lower()
    runs = [r for r in api.runs(function_ids=[api.function_id(slug)], status=statuses,
                                since=since, until=until)
            if not needle or needle in (r.get("output") or "").lower()]
    new_ids, skipped = [], []
    for run in reversed(runs):                         # oldest first, as the engine does
        if _is_cron(api, run["id"]):
            skipped.append(run["id"])
            continue
        new_ids.append(api.rerun(run["id"]))
    _say(f"replayed {len(new_ids)} run(s) of {slug} from the start (run by run)", skipped)
    return new_ids


def _say(done: str, skipped: list[str]) -> None:
    note = (f"; skipped {len(skipped)} cron-triggered run(s), which cannot be rerun"
            if skipped else "")
    show(text=done + note)
