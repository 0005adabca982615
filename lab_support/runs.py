"""Run records as the notebook sees them: a list of dicts that also renders as a table."""

from __future__ import annotations

import html
from typing import Any

from .client import REST_TO_GQL, TERMINAL

STATUSES = ("QUEUED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "SKIPPED")
_ALIASES = {**{k.upper(): v for k, v in REST_TO_GQL.items()}, "CANCELED": "CANCELLED"}


def normalize_status(status: Any) -> list[str] | None:
    """'failed', 'Failed', 'FAILED', 'Scheduled' or a list of them → GraphQL enum names."""
    if status is None:
        return None
    items = [status] if isinstance(status, str) else list(status)
    out = []
    for item in items:
        key = str(item).strip().upper()
        key = _ALIASES.get(key, key)
        if key not in STATUSES:
            raise ValueError(f"Unknown run status {item!r}; use one of {', '.join(STATUSES)}.")
        out.append(key)
    return out


def is_terminal(run: dict) -> bool:
    return run.get("status") in TERMINAL


def status_counts(runs: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.get("status", "?")] = counts.get(run.get("status", "?"), 0) + 1
    return counts


class RunList(list):
    """``lab.runs(...)``: a plain list of run dicts, shown as a table in a notebook."""

    COLUMNS = ("id", "function", "status", "queuedAt", "startedAt", "endedAt", "output")

    @property
    def ids(self) -> list[str]:
        return [r["id"] for r in self]

    def row(self, run: dict) -> dict:
        fn = (run.get("function") or {}).get("slug", "")
        return {"id": run.get("id"), "function": fn, "status": run.get("status"),
                "queuedAt": run.get("queuedAt"), "startedAt": run.get("startedAt"),
                "endedAt": run.get("endedAt"), "output": (run.get("output") or "")[:60]}

    def frame(self):
        import pandas as pd

        return pd.DataFrame([self.row(r) for r in self], columns=list(self.COLUMNS))

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{c}</th>" for c in self.COLUMNS)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v or ''))}</td>"
                                        for v in self.row(r).values()) + "</tr>" for r in self)
        return f"<table class='lab-runs'><tr>{head}</tr>{body}</table><p>{len(self)} run(s)</p>"
