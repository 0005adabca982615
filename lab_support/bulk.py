"""``lab.bulk_cancel``: cancel a function's runs in a time window.

On the embedded engine this is one ``POST /v1/cancellations`` (the real API). On a real dev
server that endpoint answers 500 (its cancellation store is not wired), so we cancel run by
run through GraphQL ``cancelRun``, evaluating ``if_exp`` on each run's event ourselves.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .client import parse_time, to_rfc3339

if TYPE_CHECKING:
    from .lab_object import Lab

ACTIVE = ["QUEUED", "RUNNING"]
SETTLE_S = 3.0  # how long we watch the engine apply its (asynchronous) bulk cancel


def _trigger_event(api, run_id: str) -> dict:
    trigger = api.trigger(run_id)
    payloads = trigger.get("payloads") or []
    first = payloads[0] if payloads else {}
    event = json.loads(first) if isinstance(first, str) else dict(first or {})
    event.setdefault("name", trigger.get("eventName") or "")
    return event


def _started_in_window(run: dict, since, until) -> bool:
    # The window is on when a run was scheduled, as in the REST cancellation API.
    started = parse_time(run.get("queuedAt") or run.get("startedAt"))
    if started is None:
        return True
    if since is not None and started < _aware(since):
        return False
    return until is None or started <= _aware(until)


def _aware(value):
    if isinstance(value, str):
        return parse_time(value)
    from datetime import timezone

    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def bulk_cancel(lab: "Lab", function: Any, since: datetime | None,
                until: datetime | None, if_exp: str | None) -> list[str]:
    api = lab._require_engine()
    slug = lab._slug(function)
    fn_id = api.function_id(slug)
    candidates = [r for r in api.runs(function_ids=[fn_id], status=ACTIVE)
                  if _started_in_window(r, since, until)]
    if api.kind == "embedded":
        # started_before may not be more than 5 s past the engine's clock.
        before = until or (lab.clock.now() + timedelta(seconds=1))
        record = api.bulk_cancel(app_id=lab.app_id or "", function_id=slug,
                                 started_after=to_rfc3339(since),
                                 started_before=to_rfc3339(before), if_exp=if_exp)
        data = record.get("data", record) if isinstance(record, dict) else {}
        if isinstance(data.get("cancelled_run_ids"), list):
            return list(data["cancelled_run_ids"])
        return _settled_cancellations(api, [r["id"] for r in candidates])
    cancelled = []
    for run in candidates:
        if if_exp:
            from .devserver.expressions import truthy

            if not truthy(if_exp, _trigger_event(api, run["id"])):
                continue
        api.cancel_run(run["id"])
        cancelled.append(run["id"])
    return cancelled


def _settled_cancellations(api, run_ids: list[str]) -> list[str]:
    """Which of ``run_ids`` the engine has cancelled, once they stop changing (bounded)."""
    deadline = time.monotonic() + SETTLE_S
    while True:
        statuses = {rid: api.run(rid)["status"] for rid in run_ids}
        cancelled = [rid for rid, s in statuses.items() if s == "CANCELLED"]
        if len(cancelled) == len(run_ids) or time.monotonic() >= deadline:
            return cancelled
        time.sleep(0.1)
