"""``lab.stats(...)``: how many steps were *executing* at once, overall and per key.

Inngest's concurrency limits cap executing steps (SDK requests in flight), not runs: a
sleeping, waiting or between-steps run holds no slot. So the numbers here count step
executions, never "runs in progress".

* Embedded engine: the engine records every SDK call's start and end on its clock
  (``GET /lab/v1/stats/steps``), so ``series`` also has the calls queued for a slot.
* Real dev server: the lab's function host records every call it answers (``host_calls``:
  from the request's arrival to the answer sent, which lies inside the time the server holds
  the slot), so the same numbers come from there, without a queue column. The host counts
  the short calls that plan a step or return the result too, as the engine does.
* A function the lab's host did not serve (another app): rebuilt from each run's trace, one
  interval per step attempt (its ``Attempt N`` span, or the step span). Slower (two requests
  per run) and approximate: traces have no span for the planning calls and leave attempt
  spans open (``attempt_intervals``).

``peaks`` is keyed by the value of ``key`` (a CEL expression on the run's triggering
event, e.g. ``event.data.customer_id``); with no key, a function's own keyed concurrency
limit is used.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from . import tracing
from .client import parse_time

EXECUTING_OPS = {"RUN", "AI_GATEWAY", None, ""}
SERIES_COLUMNS = ["time", "executing", "queued"]


@dataclass
class Stats:
    function: str | None
    key: str | None
    peak: int
    peaks: dict[str, int]
    series: Any = field(repr=False)       # pandas DataFrame: time, executing, queued
    source: str = "engine"                # engine | traces

    def __repr__(self) -> str:
        what = self.function or "all functions"
        text = f"executing steps ({what}, from {self.source}): peak {self.peak}"
        if self.key:
            top = max(self.peaks.values(), default=0)
            text += f"; per {self.key}: max {top} over {len(self.peaks)} value(s) {self.peaks}"
        return text

    def _repr_html_(self) -> str:
        import html

        rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v}</td></tr>"
                       for k, v in self.peaks.items())
        per_key = (f"<table><tr><th>{html.escape(self.key)}</th><th>peak</th></tr>{rows}"
                   "</table>") if self.key else ""
        return (f"<div class='lab-stats'><b>executing steps</b> "
                f"({html.escape(self.function or 'all functions')}): peak "
                f"<b>{self.peak}</b>{per_key}</div>")


def _frame(rows: list[list]):
    import pandas as pd

    frame = pd.DataFrame(rows, columns=SERIES_COLUMNS)
    frame["time"] = pd.to_datetime(frame["time"], unit="ms", utc=True)
    return frame


def default_key(config: dict) -> str | None:
    """A function's own keyed concurrency limit: the natural lanes for its peaks."""
    for spec in config.get("concurrency") or []:
        if spec.get("key"):
            return spec["key"]
    return None


def from_engine(api, slug: str | None, key: str | None) -> Stats:
    params = {k: v for k, v in (("function", slug), ("key", key)) if v}
    body = api.lab_get("stats/steps", "lab.stats", params)
    return Stats(function=slug, key=body.get("key"), peak=int(body.get("peak") or 0),
                 peaks={k: int(v) for k, v in (body.get("peaks") or {}).items()},
                 series=_frame(body.get("series") or []), source="engine")


def _tally(intervals, key: str | None, slug: str | None, source: str) -> Stats:
    """Peaks of ``intervals`` — (start, end or None, key value) — overall and per value."""
    changes = []                       # (time, order, +1/-1, key value); ends sort first
    forever = datetime.max.replace(tzinfo=timezone.utc)
    for start, end, value in intervals:
        changes += [(start, 1, 1, value), (end or forever, 0, -1, value)]
    changes.sort(key=lambda c: (c[0], c[1]))
    executing, peak, series = 0, 0, []
    per_key: Counter[str] = Counter()
    peaks: dict[str, int] = {}
    for when, _order, delta, value in changes:
        executing += delta
        peak = max(peak, executing)
        if when != forever:
            series.append([int(when.timestamp() * 1000), executing, None])
        if value is not None:
            per_key[value] += delta
            peaks[value] = max(peaks.get(value, 0), per_key[value])
    return Stats(function=slug, key=key, peak=peak, peaks=dict(sorted(peaks.items())),
                 series=_frame(series), source=source)


def _key_value(key: str | None, event: dict):
    from .devserver import expressions

    if not key:
        return None
    try:
        return expressions.key_value(key, event)
    except expressions.ExpressionError:
        return None


# -- the function host's record (a real dev server) --------------------------------------------
def from_host(calls: list[list], slug: str | None, key: str | None) -> Stats:
    """``calls`` as ``GET /lab/faults/calls`` answers: [function, start, end, event]."""
    def at(seconds):
        return None if seconds is None else datetime.fromtimestamp(seconds, timezone.utc)

    return _tally([(at(start), at(end), _key_value(key, event or {}))
                   for _fn, start, end, event in calls], key, slug, "function host")


# -- rebuilt from traces (a function the lab did not serve) -------------------------------------
def attempt_intervals(trace: dict, run_end: datetime | None = None
                      ) -> list[tuple[datetime, datetime | None]]:
    """(start, end) of every step execution in a trace; end None while still executing.

    A real server can leave an attempt's span open after it ended (seen on the OSS build: a
    finished run whose step and attempt spans have no end). Counting those as executing
    until the run ends inflates every peak, so an open attempt ends at the first thing known
    to come after it: the step's next attempt, the step span's own end, the moment the run's
    next step was queued (a run's steps execute one after another; parallel steps are the
    rare exception, and this can only undercount them), or the end of the run."""
    run_end = run_end or parse_time((trace or {}).get("endedAt"))
    steps = []                          # (step span, its attempts as (start, end) in order)
    for span in tracing.step_spans(trace):
        if span.get("memoized") or span.get("stepOp") not in EXECUTING_OPS:
            continue                    # sleeps and waits hold no slot
        if span.get("status") == "QUEUED":
            continue                    # waiting for a slot is not executing
        children = [c for c in span.get("childrenSpans") or []
                    if str(c.get("name", "")).startswith("Attempt")]
        parts = sorted((parse_time(p.get("startedAt")), parse_time(p.get("endedAt")))
                       for p in children or [span] if parse_time(p.get("startedAt")))
        if parts:
            steps.append((span, parts))
    # When each step first appeared (queued copies included): the run's next step is queued
    # as soon as the one before it ended, long before it gets a slot to run in.
    appeared: dict[tuple, datetime] = {}
    for copy in (trace or {}).get("childrenSpans") or []:
        began = parse_time(copy.get("startedAt"))
        if began and (copy.get("stepID") or copy.get("stepOp")):
            key = (copy.get("stepID"), copy.get("name"))
            appeared[key] = min(began, appeared.get(key, began))
    out = []
    for span, parts in steps:
        step_end = parse_time(span.get("endedAt"))
        own = (span.get("stepID"), span.get("name"))
        for n, (start, end) in enumerate(parts):
            if end is None:
                next_step = min((t for key, t in appeared.items() if key != own and t > start),
                                default=None)
                after = [t for t in (parts[n + 1][0] if n + 1 < len(parts) else None, step_end,
                                     next_step)
                         if t is not None and t >= start]
                end = min(after) if after else (run_end if run_end and run_end >= start
                                                else None)
            out.append((start, end))
    return out


def _trigger_event(api, run_id: str) -> dict:
    payloads = api.trigger(run_id).get("payloads") or []
    first = payloads[0] if payloads else "{}"
    return json.loads(first) if isinstance(first, str) else dict(first or {})


def from_traces(api, slug: str | None, key: str | None, *, limit: int = 400) -> Stats:
    fn_ids = [api.function_id(slug)] if slug else None
    intervals = []
    for run in api.runs(function_ids=fn_ids, limit=limit):
        value = _key_value(key, _trigger_event(api, run["id"])) if key else None
        run_end = parse_time(run.get("endedAt"))
        intervals += [(start, end, value)
                      for start, end in attempt_intervals(api.trace(run["id"]), run_end)]
    return _tally(intervals, key, slug, "traces")
