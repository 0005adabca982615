"""``lab.watch``: redraw the run timeline until the runs finish (or time is up).

In JupyterLab the image and the caption under it (run counts, and every step that needed
more than one attempt, attempt by attempt) update in place; the last ones stay in the saved
notebook, so a papermill run shows what happened. The call returns after ``timeout`` at the
latest. ``lane="run"`` or ``"function"`` counts runs and executing steps; any other lane (an
event path such as ``"event.data.customer_id"``, or a function of the event) is a
concurrency key, and the lower panel plots executing steps per key.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .client import LabClientError, parse_time
from .display import ShownInCell, in_kernel, show, show_figure
from .runs import is_terminal
from .timeline import RunLane, attempts_text, summary_text, timeline_figure

if TYPE_CHECKING:
    from .lab_object import Lab


def _lane_for(api, run: dict, lane: Any, cache: dict) -> str:
    if lane == "run":
        return run["id"][-8:]
    if lane == "function":
        return (run.get("function") or {}).get("slug", "?")
    if run["id"] not in cache:
        trigger = api.trigger(run["id"])
        payload = (trigger.get("payloads") or [None])[0]
        cache[run["id"]] = json.loads(payload) if isinstance(payload, str) else (payload or {})
    event = cache[run["id"]]
    if callable(lane):
        return str(lane(event))
    if isinstance(lane, str) and lane.startswith("event."):
        value: Any = {"event": event}
        for part in lane.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return str(value)
    raise ValueError("lane is 'run', 'function', a path like 'event.data.customer_id', "
                     "or a function of the event")


def _collect(lab: "Lab", target: Any) -> list[dict]:
    api = lab._require_engine()
    ids = [target] if isinstance(target, str) else None
    if isinstance(target, (list, tuple)):
        ids = list(target)
    if ids is None or (len(ids) == 1 and not _is_known_id(api, ids[0])):
        return list(lab.runs(function=target if ids is None else ids[0]))
    runs: list[dict] = []
    for some_id in ids:
        try:
            runs.append(api.run(some_id, wait=0))  # an event id is no run: ask once
        except LabClientError:  # an event id: its runs
            runs += [api.run(r["run_id"]) for r in api.event_runs(some_id)]
    return runs


def _is_known_id(api, value: str) -> bool:
    try:
        api.run(value, wait=0)
        return True
    except LabClientError:
        try:
            api.event_runs(value)
            return True
        except LabClientError:
            return False


def watch(lab: "Lab", target: Any, *, until: Any = "done", lane: Any = "run",
          timeout: float = 60.0, interval: float = 0.5) -> list[RunLane]:
    if until != "done" and not isinstance(until, (int, float)):
        raise ValueError("until is 'done' (all runs finished) or a number of seconds")
    api = lab._require_engine()
    memo = api.kind == "embedded"
    display_id = f"lab-watch-{uuid.uuid4().hex}"
    by_key = lane not in ("run", "function")
    limit = min(timeout, until) if isinstance(until, (int, float)) else timeout
    deadline = time.monotonic() + limit
    cache: dict = {}
    shown = False
    while True:
        runs = _collect(lab, target)
        lanes = []
        for run in runs:
            trace = api.trace(run["id"], memo_field=memo) if run.get("startedAt") else None
            lanes.append(RunLane(run["id"], _lane_for(api, run, lane, cache), run["status"],
                                 parse_time(run.get("startedAt")), parse_time(run.get("endedAt")),
                                 list((trace or {}).get("childrenSpans") or [])))
        finished = until == "done" and runs and all(is_terminal(r) for r in runs)
        last = finished or time.monotonic() >= deadline
        if in_kernel() or last:
            now = lab.clock.now() if memo else datetime.now(timezone.utc)
            stats = _engine_stats(lab, runs, lane) if memo else None
            queued = _queued(stats)
            fig = timeline_figure(lanes, now, title=summary_text(lanes), by_key=by_key,
                                  queued=queued)
            show_figure(fig, alt=summary_text(lanes), display_id=display_id, update=shown)
            show(text=caption(lanes, stats), display_id=display_id + "-caption", update=shown)
            shown = True
        if last:
            result = WatchResult(lanes)
            result.mark_shown()
            return result
        time.sleep(interval)


def _engine_stats(lab: "Lab", runs: list[dict], lane: Any):
    """The engine's own count of executing steps (``lab.stats``) when the runs are of one
    function: it also sees the calls queued for a concurrency slot, which traces cannot.
    Counted over the function's whole history since the last reset."""
    slugs = {(r.get("function") or {}).get("slug") for r in runs}
    if len(slugs) != 1 or None in slugs or not callable(getattr(lab, "stats", None)):
        return None
    key = lane if isinstance(lane, str) and lane.startswith("event.") else None
    try:
        return lab.stats(slugs.pop(), key=key)
    except (LabClientError, ValueError):
        return None  # an engine without step stats: the traces still tell the story


def _queued(stats) -> list | None:
    series = getattr(stats, "series", None)
    if series is None or "queued" not in series or not len(series) or not series["queued"].any():
        return None
    return [(t.to_pydatetime(), int(n)) for t, n in zip(series["time"], series["queued"],
                                                        strict=True)]


def caption(lanes: list[RunLane], stats=None) -> str:
    lines = [summary_text(lanes), *attempts_text(lanes)]
    if stats is not None:
        line = f"engine count (lab.stats): peak {stats.peak} step(s) executing at once"
        if stats.key and stats.peaks:
            line += f"; per {stats.key}: max {max(stats.peaks.values())}"
        lines.append(line)
    return "\n".join(lines)


class WatchResult(list, ShownInCell):
    """The lanes ``lab.watch`` drew; echoing it in the same cell adds nothing."""

    def redisplay(self) -> None:
        print(caption(self))
