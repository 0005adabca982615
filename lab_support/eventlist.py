"""``lab.events(...)``: events newest first, each with the run ids it started.

Read through GraphQL ``eventsV2`` (with each event's ``runs``), which the embedded engine and
a real dev server both serve. ``unmatched=True`` keeps the events that started no run: a
typo in an event name, a trigger expression that said no, a duplicate event id.
Internal events (``inngest/...``: cron ticks, invokes, lifecycle events) are left out unless
the name asked for is one of them.
"""

from __future__ import annotations

import html
import json
from datetime import datetime
from typing import Any

from .client import parse_time

PREVIEW_CHARS = 60


def event_record(node: dict) -> dict:
    try:
        raw = json.loads(node.get("raw") or "{}")
    except ValueError:
        raw = {}
    return {"id": node.get("id"), "name": node.get("name"),
            "event_id": node.get("idempotencyKey"),
            "received_at": parse_time(node.get("receivedAt")),
            "data": raw.get("data") if isinstance(raw, dict) else None,
            "runs": [r["id"] for r in node.get("runs") or []],
            "functions": sorted({(r.get("function") or {}).get("slug", "")
                                 for r in node.get("runs") or []} - {""})}


def fetch(api, name: str | None = None, unmatched: bool = False,
          since: datetime | str | None = None, limit: int = 200) -> "EventList":
    if name is not None and (not isinstance(name, str) or not name):
        raise ValueError("name is an event name, e.g. lab.events('support/email.received')")
    internal = bool(name and name.startswith("inngest/"))
    nodes = api.events(names=[name] if name else None, since=since, internal=internal,
                       limit=limit)
    events = [event_record(n) for n in nodes]
    if unmatched:
        events = [e for e in events if not e["runs"]]
    events.sort(key=lambda e: e["id"] or "", reverse=True)
    return EventList(events)


class EventList(list):
    """A plain list of event dicts (``id``, ``name``, ``event_id``, ``received_at``, ``data``,
    ``runs``, ``functions``), shown as a table in a notebook."""

    COLUMNS = ("received_at", "name", "id", "runs", "functions", "data")

    @property
    def ids(self) -> list[str]:
        return [e["id"] for e in self]

    def row(self, event: dict) -> dict:
        data = json.dumps(event.get("data"), default=str)
        return {"received_at": event.get("received_at"), "name": event.get("name"),
                "id": event.get("id"), "runs": len(event.get("runs") or []),
                "functions": ", ".join(event.get("functions") or []),
                "data": data if len(data) <= PREVIEW_CHARS else data[:PREVIEW_CHARS - 1] + "…"}

    def frame(self):
        import pandas as pd

        return pd.DataFrame([self.row(e) for e in self], columns=list(self.COLUMNS))

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{c}</th>" for c in self.COLUMNS)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(_text(v))}</td>"
                                        for v in self.row(e).values()) + "</tr>" for e in self)
        unmatched = sum(1 for e in self if not e.get("runs"))
        return (f"<table class='lab-events'><tr>{head}</tr>{body}</table>"
                f"<p>{len(self)} event(s), {unmatched} started no run</p>")


def _text(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds")
    return "" if value is None else str(value)
