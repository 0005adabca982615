"""Turn a GraphQL run trace into rows: one per step, saying what happened to it.

Pure functions (no HTTP), so they are tested on recorded trace shapes. The same words are
used by the dashboard (``devserver/dashboard/app.js``): a step's *status* is the run's
when the run ended before the step did (a cancelled run's sleep is ``CANCELLED``, not
``RUNNING``), and its *source* is ``memo hit``, ``cancelled``, ``retried``, ``failed`` or
``executed``. The table shows times as short engine-clock readings and a duration column;
the values underneath stay ``datetime`` / ``timedelta`` so checks can compute with them.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from .client import TERMINAL, parse_time
from .timefmt import format_clock, format_duration, spans_days

COLUMNS = ["step", "op", "attempts", "started", "ended", "duration", "status", "source",
           "output"]
SUMMARY_CHARS = 60
UNFINISHED = frozenset({"RUNNING", "QUEUED", "WAITING", "SLEEPING", "SCHEDULED"})


def summarize(value: Any, limit: int = SUMMARY_CHARS) -> str:
    """A short, one-line text for a step's output or error."""
    if value is None:
        return ""
    if isinstance(value, str):
        try:  # GraphQL hands step data back as a JSON string
            value = json.loads(value)
        except ValueError:
            pass
    if value is None:  # a sleep, a timed-out wait
        return ""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def step_spans(trace: dict | None) -> list[dict]:
    """The step spans of a trace, once each (the real server sometimes lists a step twice)."""
    seen: set[tuple] = set()
    out = []
    for span in (trace or {}).get("childrenSpans") or []:
        if not span.get("stepID") and not span.get("stepOp"):
            continue  # function-level spans ("function success", "Finalization", ...)
        key = (span.get("stepID"), span.get("name"), span.get("startedAt"))
        if key in seen:
            continue
        seen.add(key)
        out.append(span)
    return out


def step_status(span: dict, run_status: str | None = None) -> str | None:
    """The step's status as a reader should see it: a step left unfinished by a run that
    has ended (cancelled, failed elsewhere) takes the run's final status."""
    status = span.get("status")
    if run_status in TERMINAL and status in UNFINISHED:
        return run_status
    return status


def attempt_count(span: dict) -> int:
    return span.get("attempts") or len(span.get("childrenSpans") or []) or 1


def source_of(span: dict, run_status: str | None = None) -> str:
    """How the step's value came about: memo hit (from a replay), cancelled, retried (more
    than one attempt), failed (its only attempt failed), or executed."""
    if span.get("memoized"):
        return "memo hit"
    status = step_status(span, run_status)
    if status == "CANCELLED":
        return "cancelled"
    if attempt_count(span) > 1:
        return "retried"
    if status == "FAILED":
        return "failed"
    return "executed"


def trace_rows(trace: dict | None, outputs: dict[str, Any] | None = None) -> list[dict]:
    outputs = outputs or {}
    run_status = (trace or {}).get("status")
    rows = []
    for span in step_spans(trace):
        output = outputs.get(span.get("outputID") or "")
        started, ended = parse_time(span.get("startedAt")), parse_time(span.get("endedAt"))
        rows.append({
            "step": span.get("name"),
            "op": span.get("stepOp") or "",
            "attempts": attempt_count(span),
            "started": started,
            "ended": ended,
            "duration": (ended - started) if started and ended else None,
            "status": step_status(span, run_status),
            "source": source_of(span, run_status),
            "output": summarize(output),
        })
    return rows


def output_value(output: dict | None) -> Any:
    """What ``runTraceSpanOutputByID`` says a step produced: its data or its error."""
    if not output:
        return None
    if output.get("error"):
        err = output["error"]
        return f"{err.get('name') or 'Error'}: {err.get('message') or ''}"
    return output.get("data")


def failed_step(trace: dict | None) -> dict | None:
    """The step a replay should restart from: the first failed step span."""
    for span in step_spans(trace):
        if span.get("status") == "FAILED":
            return span
    return None


def trace_frame(rows: list[dict]):
    return _trace_table_class()(rows, columns=COLUMNS)


def display_frame(frame):
    """A copy for reading: short engine-clock times (the day only when the steps span
    several days) and readable durations, so no timestamp wraps in a notebook."""
    import pandas as pd

    out = pd.DataFrame(frame).copy()
    times = [t for col in ("started", "ended") if col in out for t in out[col]
             if isinstance(t, datetime) and t == t]  # t == t drops NaT
    with_day = spans_days(times)
    for col in ("started", "ended"):
        if col in out:
            out[col] = [format_clock(t, with_day=with_day) if isinstance(t, datetime) else ""
                        for t in out[col]]
    if "duration" in out:
        out["duration"] = [format_duration(d) if isinstance(d, timedelta) else ""
                           for d in out["duration"]]
    return out


_TRACE_TABLE = None


def _trace_table_class():
    """``lab.trace``'s table: a DataFrame (values unchanged) that displays readably."""
    global _TRACE_TABLE
    if _TRACE_TABLE is None:
        import pandas as pd  # heavy; only when a table is asked for

        class TraceTable(pd.DataFrame):
            @property
            def _constructor(self):
                return TraceTable

            def _repr_html_(self):
                return display_frame(self)._repr_html_()

            def __repr__(self) -> str:
                return repr(display_frame(self))

        _TRACE_TABLE = TraceTable
    return _TRACE_TABLE
