"""Turn a GraphQL run trace into rows: one per step, saying what happened to it.

Pure functions (no HTTP), so they are tested on recorded trace shapes. The same words are
used by the dashboard (``devserver/dashboard/app.js``): a step's *status* is the run's
when the run ended before the step did (a cancelled run's sleep is ``CANCELLED``, not
``RUNNING``), and its *source* is ``memo hit``, ``cancelled``, ``retried``, ``failed`` or
``executed``. The table shows times as short engine-clock readings and a duration column;
the values underneath stay ``datetime`` / ``timedelta`` so checks can compute with them.

The ``model`` column is filled for model steps: a ``step.ai.infer`` answer (its ``usage``:
prompt/completion tokens) or a ``step.run`` whose output carries ``usage`` (the Worker's
``run-agent`` returns model, requests, input/output tokens), plus how many failed attempts
before it were rate limits (429), read from the attempts' errors.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

from .client import TERMINAL, parse_time
from .timefmt import format_clock, format_duration, spans_days

COLUMNS = ["step", "op", "attempts", "started", "ended", "duration", "status", "source",
           "output", "model"]
SUMMARY_CHARS = 60
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
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


# Which of several spans of one step tells its final state: a real server leaves stale
# copies behind (a planned span still QUEUED, an attempt still RUNNING) next to the final one.
_STATUS_RANK = {"COMPLETED": 6, "FAILED": 5, "CANCELLED": 4, "SKIPPED": 3, "WAITING": 2,
                "RUNNING": 1, "QUEUED": 0}


def attempt_count(span: dict) -> int:
    """Attempts of one span: its ``Attempt N`` children or its ``attempts`` count (the client
    turns a real server's 0-based attempt index into a count), whichever is more."""
    children = [c for c in span.get("childrenSpans") or []
                if str(c.get("name", "")).startswith("Attempt")]
    return max(len(children), int(span.get("attempts") or 0), 1)


def step_spans(trace: dict | None) -> list[dict]:
    """The step spans of a trace, one per step. A real server may list a step several times
    (a planned copy, stale attempt copies, a copy per retry); they are merged into one span
    with the most final status, the most attempts, the earliest start and the latest end."""
    groups: dict[tuple, list[dict]] = {}
    for span in (trace or {}).get("childrenSpans") or []:
        if not span.get("stepID") and not span.get("stepOp"):
            continue  # function-level spans ("function success", "Finalization", ...)
        groups.setdefault((span.get("stepID"), span.get("name")), []).append(span)
    return _close_sleeps([_merge(spans) for spans in groups.values()])


def _close_sleeps(spans: list[dict]) -> list[dict]:
    """A real server can leave a sleep's span WAITING, with no end, in a run that went on
    (seen in failed runs). When another step was active after the sleep's wake time
    (``sleepUntil``), the sleep ended at its wake time."""
    out = []
    for span in spans:
        until = parse_time((span.get("stepInfo") or {}).get("sleepUntil"))
        if span.get("stepOp") == "SLEEP" and not span.get("endedAt") and until \
                and span.get("status") in ("WAITING", "RUNNING", "QUEUED"):
            seen = [parse_time(sp.get(key)) for sp in spans if sp is not span
                    for key in ("startedAt", "endedAt") if sp.get(key)]
            if any(t >= until for t in seen):
                span = dict(span, status="COMPLETED",
                            endedAt=until.isoformat().replace("+00:00", "Z"))
        out.append(span)
    return out


def _merge(spans: list[dict]) -> dict:
    if len(spans) == 1:
        return spans[0]
    # The most final copy tells the status (stale copies stay RUNNING/QUEUED); any copy may
    # hold the highest attempt count.
    best = max(spans, key=lambda sp: (_STATUS_RANK.get(sp.get("status"), -1),
                                      attempt_count(sp), bool(sp.get("outputID"))))
    merged = dict(best)
    merged["stepOp"] = best.get("stepOp") or next((sp["stepOp"] for sp in spans
                                                   if sp.get("stepOp")), None)
    merged["attempts"] = max(attempt_count(sp) for sp in spans)
    merged["childrenSpans"] = max((sp.get("childrenSpans") or [] for sp in spans), key=len)
    # A real server also keeps a QUEUED copy whose startedAt is when the step was queued for a
    # slot (seen on 253303cd): the step started when a copy that ran did.
    ran = [sp for sp in spans if sp.get("status") != "QUEUED"] or spans
    starts = [sp["startedAt"] for sp in ran if sp.get("startedAt")]
    ends = [sp["endedAt"] for sp in spans if sp.get("endedAt")]
    merged["startedAt"] = min(starts, key=parse_time) if starts else None
    merged["endedAt"] = max(ends, key=parse_time) if ends else None
    merged["memoized"] = any(sp.get("memoized") for sp in spans)
    return merged


def step_status(span: dict, run_status: str | None = None) -> str | None:
    """The step's status as a reader should see it: a step left unfinished by a run that
    has ended (cancelled, failed elsewhere) takes the run's final status."""
    status = span.get("status")
    if run_status in TERMINAL and status in UNFINISHED:
        return run_status
    return status


def source_of(span: dict, run_status: str | None = None) -> str:
    """How the step's value came about: memo hit (from a rerun), cancelled, retried (more
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


def _decoded(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _rate_limited(error: Any) -> bool:
    text = str(error or "")
    return "RateLimitError" in text or "rate_limit" in text or "429" in text


def model_line(output: Any, attempt_errors: list | tuple = ()) -> str:
    """``offline-lab-model · 4 calls · 4849 in / 278 out tokens · 2×429 retried``, or ``""``
    for a step that is not a model call."""
    value = _decoded(output)
    usage = value.get("usage") if isinstance(value, dict) else None
    limited = sum(1 for e in attempt_errors if _rate_limited(e))
    parts = []
    if isinstance(usage, dict):
        tokens_in = usage.get("input_tokens", usage.get("prompt_tokens"))
        tokens_out = usage.get("output_tokens", usage.get("completion_tokens"))
        if tokens_in is None and tokens_out is None:
            return ""
        parts.append(str(usage.get("model") or value.get("model") or "model"))
        if usage.get("requests"):
            parts.append(f"{usage['requests']} calls")
        parts.append(f"{tokens_in or 0} in / {tokens_out or 0} out tokens")
    if limited:
        parts.append(f"{limited}×429 retried")
    return " · ".join(parts)


def attempt_output_ids(trace: dict | None) -> list[str]:
    """Output ids of failed attempts of retried steps (their errors)."""
    return [child["outputID"] for span in step_spans(trace)
            for child in span.get("childrenSpans") or [] if child.get("outputID")]


def trace_rows(trace: dict | None, outputs: dict[str, Any] | None = None) -> list[dict]:
    outputs = outputs or {}
    run_status = (trace or {}).get("status")
    rows = []
    for span in step_spans(trace):
        output = outputs.get(span.get("outputID") or "")
        started, ended = parse_time(span.get("startedAt")), parse_time(span.get("endedAt"))
        errors = [outputs.get(c["outputID"]) for c in span.get("childrenSpans") or []
                  if c.get("outputID")]
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
            "model": model_line(output, errors),
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
    """The step a replay should restart from: the failed step that started last (the one that
    failed the run; an earlier failure was caught or retried)."""
    failed = [span for span in step_spans(trace) if span.get("status") == "FAILED"]
    return max(failed, key=lambda sp: parse_time(sp.get("startedAt")) or _EPOCH,
               default=None)


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
