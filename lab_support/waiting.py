"""``lab.wait``: poll runs until they finish, with a progress line and a useful timeout.

A target is a run id or an event id. An event id that has started no run yet is looked up
again on every poll. When it stays runless past ``DEDUP_CHECK_AFTER_S`` and was sent with
an id of its own, the other copies of that id are looked at: an engine starts one run per
id (per function, within 24 h), and on a real dev server that run may belong to either copy.
The wait then resolves to the run the id produced and says, once, that this event was a
duplicate that started no run (instead of waiting out its timeout for a run that will never
come).
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from .client import LabClientError, parse_time, to_rfc3339
from .display import in_kernel, show
from .runs import is_terminal, normalize_status, status_counts

if TYPE_CHECKING:
    from .lab_object import Lab

POLL_S = 0.1
UNKNOWN_GRACE_S = 5.0       # a target neither engine API knows yet (GraphQL lags REST)
DEDUP_CHECK_AFTER_S = 0.5   # an event still runless after this: look at its id's copies
DEDUP_RECHECK_S = 1.0
DEDUP_WINDOW = timedelta(hours=24)
EVENT_PAGES = 5


class RunWaitTimeout(TimeoutError):
    """Runs did not reach the wanted state in time; the message says where they are."""


class Progress:
    """One line that updates in place in a notebook (and stays quiet elsewhere)."""

    REFRESH_S = 1.0  # redraw at most this often unless the text changed

    def __init__(self) -> None:
        self.display_id = f"lab-wait-{uuid.uuid4().hex}"
        self.started = time.monotonic()
        self.shown = False
        self._last = ("", 0.0)

    def update(self, text: str, final: bool = False) -> None:
        if not in_kernel():
            return
        now = time.monotonic()
        if not final and text == self._last[0] and now - self._last[1] < self.REFRESH_S:
            return
        self._last = (text, now)
        line = f"{text} ({now - self.started:.1f} s)"
        show(text=line, display_id=self.display_id, update=self.shown)
        self.shown = True


def _runs_of(api, target: str) -> list[str] | None:
    """Run ids behind ``target``: itself if it is a run, the runs an event started (maybe
    none yet) if it is an event, None if the engine knows neither (yet)."""
    try:
        api.run(target, wait=0)
        return [target]
    except LabClientError:
        pass
    try:
        return [r["run_id"] for r in api.event_runs(target)]
    except LabClientError:
        return None


def _event_runs(api, event_id: str) -> list[str] | None:
    try:
        return [r["run_id"] for r in api.event_runs(event_id)]
    except LabClientError:
        return None


def duplicate_runs(api, event_id: str) -> tuple[list[str], str] | None:
    """When ``event_id`` carries a sender's id that another copy already used, the runs
    that copy started and a sentence saying so; None when there is no such copy (yet)."""
    event = api.event(event_id)
    user_id = (event or {}).get("id")
    if not user_id or user_id == event_id:
        return None
    received = parse_time(event.get("received_at"))
    since = to_rfc3339(received - DEDUP_WINDOW) if received else None
    cursor = None
    for _ in range(EVENT_PAGES):
        page = api.rest_events(name=event["name"], received_after=since, cursor=cursor)
        for copy in page:
            if copy.get("id") != user_id or copy.get("internal_id") == event_id:
                continue
            run_ids = [r["run_id"] for r in api.event_runs(copy["internal_id"])]
            if run_ids:
                return run_ids, (f"event {event_id} is a duplicate of id {user_id!r} (first "
                                 f"sent as event {copy['internal_id']}): no new run. "
                                 f"Waiting on the run that id started: {', '.join(run_ids)}.")
        if len(page) < 2:
            break
        cursor = page[-1].get("internal_id")
    return None


def wait_for(lab: "Lab", target: Any, status: Any = None, timeout: float = 30.0):
    api = lab._require_engine()
    targets = [target] if isinstance(target, str) else list(target or [])
    if not targets or not all(isinstance(t, str) for t in targets):
        raise ValueError("wait needs a run id, an event id, or a list of them")
    want = normalize_status(status)
    started = time.monotonic()
    deadline = started + timeout
    progress = Progress()
    run_ids: dict[str, list[str]] = {}
    final: set[str] = set()  # targets whose runs cannot change: run ids, resolved duplicates
    dedup_checked: dict[str, float] = {}
    runs: dict[str, dict] = {}
    while True:
        now = time.monotonic()
        grew = False
        for t in targets:
            if t in final:
                continue
            if run_ids.get(t):  # an event with runs: more may still appear (fan-out)
                found = _event_runs(api, t)
            else:
                found = _runs_of(api, t)
                if found == [t]:
                    final.add(t)
            if found is None and t not in run_ids:
                if now - started >= min(UNKNOWN_GRACE_S, timeout):
                    raise ValueError(f"{t!r} is neither a run id nor an event id this engine "
                                     "knows.")
                continue
            if not found and now - started >= DEDUP_CHECK_AFTER_S \
                    and now - dedup_checked.get(t, 0.0) >= DEDUP_RECHECK_S:
                dedup_checked[t] = now
                duplicate = duplicate_runs(api, t)
                if duplicate is not None:
                    found, note = duplicate
                    final.add(t)
                    show(text=note)
            found = found or run_ids.get(t) or []
            grew = grew or len(found) > len(run_ids.get(t) or [])
            run_ids[t] = found
        for run_id in [r for ids in run_ids.values() for r in ids]:
            if run_id not in runs or not _done(runs[run_id], want):
                runs[run_id] = api.run(run_id)  # GraphQL: live status on both engines
                _check_reachable(runs[run_id], want)
        pending_events = [t for t in targets if not run_ids.get(t)]
        ready = not pending_events and not grew and all(_done(r, want) for r in runs.values())
        summary = _summary(runs, pending_events, want)
        progress.update(summary, final=ready)
        if ready:
            ordered = list({r: runs[r] for t in targets for r in run_ids[t]}.values())
            return ordered[0] if len(ordered) == 1 else ordered
        if time.monotonic() >= deadline and all(t in run_ids for t in targets):
            raise RunWaitTimeout(_timeout_message(summary, pending_events, timeout, lab))
        time.sleep(POLL_S)


def _done(run: dict, want: list[str] | None) -> bool:
    return run.get("status") in want if want else is_terminal(run)


def _check_reachable(run: dict, want: list[str] | None) -> None:
    if want and is_terminal(run) and run.get("status") not in want:
        raise RuntimeError(f"Run {run['id']} ended {run['status']}, so it will never be "
                           f"{'/'.join(want)}. Look at lab.trace({run['id']!r}).")


def _summary(runs: dict, pending_events: list[str], want) -> str:
    counts = ", ".join(f"{n} {s.lower()}" for s, n in sorted(status_counts(runs.values()).items()))
    goal = "/".join(want).lower() if want else "finished"
    text = f"waiting for {len(runs)} run(s) to be {goal}: {counts or 'none started yet'}"
    if pending_events:
        text += f"; {len(pending_events)} event(s) have not started a run yet"
    return text


def _timeout_message(summary: str, pending_events: list[str], timeout: float, lab) -> str:
    hints = []
    if pending_events:
        hints.append("no run started for event(s) " + ", ".join(pending_events) +
                     ": does a synced function trigger on that event name (lab.status())? "
                     "Debounce or batching also delay the start")
    if lab.api is not None and lab.api.kind == "embedded":
        hints.append("a run sleeping or waiting for an event on the virtual clock needs "
                     "lab.clock.advance(...) or lab.clock.to_next_timer()")
    else:
        hints.append("on a real dev server a sleep or a retry backoff lasts its real "
                     "duration: write lab.hours(...) / lab.minutes(...) so it is scaled")
    if lab._host is not None and not lab._host.alive():
        hints.append("the function host is down (lab.restart_host())")
    return (f"Timed out after {timeout:.0f} s — {summary}.\nPossible reasons: " +
            "; ".join(hints) + ".")
