"""``lab.executions(...)``: what Inngest would bill for the runs in a window.

Inngest bills *executions*: "one function run or one step execution" ("a function run with
five steps uses six executions", limits docs). A retry runs the step's code again in a new
request, so each attempt is one step execution here:

* ``runs``: runs that started (skipped and still-queued runs never executed);
* ``steps``: steps executed (a step restored from a rerun's memo is not), sleeps and waits
  included;
* ``attempts``: step executions including retries;
* ``executions`` = ``runs + attempts``, the billed number (``runs + steps`` is the no-retry
  count);
* ``by_function``: the same per function (a pandas DataFrame).

The embedded engine counts from its own records (``GET /lab/v1/executions``). On a real dev
server the same numbers come from each run's trace (slower: one request per run).
``lab.cost(...)`` turns this object into money, so its fields stay exactly these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import tracing
from .client import to_rfc3339

FIELDS = ("runs", "steps", "attempts", "executions")
COLUMNS = ["function", *FIELDS]


@dataclass
class Executions:
    runs: int
    steps: int
    attempts: int
    executions: int
    by_function: Any = field(repr=False)      # pandas DataFrame: function + the four counts

    def __repr__(self) -> str:
        return (f"executions: {self.executions} billed = {self.runs} run(s) + "
                f"{self.attempts} step execution(s) ({self.steps} step(s), "
                f"{self.attempts - self.steps} retried)")

    def _repr_html_(self) -> str:
        return (f"<div class='lab-executions'><p>{self!r}</p>"
                f"{self.by_function.to_html(index=False)}</div>")


def _build(rows: list[dict]) -> Executions:
    import pandas as pd

    rows = sorted(rows, key=lambda r: r["function"])
    totals = {name: sum(int(r[name]) for r in rows) for name in FIELDS}
    return Executions(**totals, by_function=pd.DataFrame(rows, columns=COLUMNS))


def from_engine(api, slug: str | None, since: datetime | None, until: datetime | None):
    params = {k: v for k, v in (("function", slug), ("since", to_rfc3339(since)),
                                ("until", to_rfc3339(until))) if v}
    body = api.lab_get("executions", "lab.executions", params)
    return _build(body.get("by_function") or [])


def span_attempts(span: dict) -> int:
    children = [c for c in span.get("childrenSpans") or []
                if str(c.get("name", "")).startswith("Attempt")]
    return max(1, int(span.get("attempts") or 0), len(children))


def from_traces(api, slug: str | None, since: datetime | None, until: datetime | None,
                *, limit: int = 2000) -> Executions:
    fn_ids = [api.function_id(slug)] if slug else None
    rows: dict[str, dict] = {}
    for run in api.runs(function_ids=fn_ids, since=since, until=until, limit=limit):
        if run.get("status") == "SKIPPED" or not run.get("startedAt"):
            continue
        spans = [s for s in tracing.step_spans(api.trace(run["id"], memo_field=
                                                         api.kind == "embedded"))
                 if not s.get("memoized") and s.get("startedAt")]
        name = (run.get("function") or {}).get("slug", "")
        row = rows.setdefault(name, {"function": name, "runs": 0, "steps": 0, "attempts": 0,
                                     "executions": 0})
        row["runs"] += 1
        row["steps"] += len(spans)
        row["attempts"] += sum(span_attempts(s) for s in spans)
    for row in rows.values():
        row["executions"] = row["runs"] + row["attempts"]
    return _build(list(rows.values()))
