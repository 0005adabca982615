"""Turn a GraphQL run trace into rows: one per step, saying what happened to it.

Pure functions (no HTTP), so they are tested on recorded trace shapes.

The ``model`` column is filled for model steps: a ``step.ai.infer`` answer (its ``usage``:
prompt/completion tokens) or a ``step.run`` whose output carries ``usage`` (the Worker's
``run-agent`` returns model, requests, input/output tokens), plus how many failed attempts
before it were rate limits (429), read from the attempts' errors.
"""

from __future__ import annotations

import json
from typing import Any

from .client import parse_time

COLUMNS = ["step", "op", "attempts", "started", "ended", "status", "source", "output", "model"]
SUMMARY_CHARS = 60


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


def source_of(span: dict) -> str:
    """How the step's value came about: executed now, memo hit (from a rerun), retried."""
    if span.get("memoized"):
        return "memo hit"
    attempts = span.get("attempts") or len(span.get("childrenSpans") or []) or 1
    return "retried" if attempts > 1 else "executed"


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
    rows = []
    for span in step_spans(trace):
        attempts = span.get("attempts") or len(span.get("childrenSpans") or []) or 1
        output = outputs.get(span.get("outputID") or "")
        errors = [outputs.get(c["outputID"]) for c in span.get("childrenSpans") or []
                  if c.get("outputID")]
        rows.append({
            "step": span.get("name"),
            "op": span.get("stepOp") or "",
            "attempts": attempts,
            "started": parse_time(span.get("startedAt")),
            "ended": parse_time(span.get("endedAt")),
            "status": span.get("status"),
            "source": source_of(span),
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
    """The step a rerun should start from: the first failed step span."""
    for span in step_spans(trace):
        if span.get("status") == "FAILED":
            return span
    return None


def trace_frame(rows: list[dict]):
    import pandas as pd  # heavy; only when a table is asked for

    return pd.DataFrame(rows, columns=COLUMNS)
