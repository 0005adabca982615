"""``lab.wait``: poll runs until they finish, with a progress line and a useful timeout."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from .client import LabClientError
from .display import in_kernel, show
from .runs import is_terminal, normalize_status, status_counts

if TYPE_CHECKING:
    from .lab_object import Lab

POLL_S = 0.1


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
    none yet) if it is an event, None if the engine knows neither."""
    try:
        api.run(target)
        return [target]
    except LabClientError:
        pass
    try:
        return [r["run_id"] for r in api.event_runs(target)]
    except LabClientError:
        return None


def wait_for(lab: "Lab", target: Any, status: Any = None, timeout: float = 30.0):
    api = lab._require_engine()
    targets = [target] if isinstance(target, str) else list(target or [])
    if not targets or not all(isinstance(t, str) for t in targets):
        raise ValueError("wait needs a run id, an event id, or a list of them")
    want = normalize_status(status)
    deadline = time.monotonic() + timeout
    progress = Progress()
    run_ids: dict[str, list[str]] = {}
    runs: dict[str, dict] = {}
    while True:
        for t in targets:
            if not run_ids.get(t):
                found = _runs_of(api, t)
                if found is None and t not in run_ids:
                    raise ValueError(f"{t!r} is neither a run id nor an event id this engine knows.")
                run_ids[t] = found or []
        for run_id in [r for ids in run_ids.values() for r in ids]:
            if run_id not in runs or not _done(runs[run_id], want):
                runs[run_id] = api.run(run_id)  # GraphQL: live status on both engines
                _check_reachable(runs[run_id], want)
        pending_events = [t for t, ids in run_ids.items() if not ids]
        ready = not pending_events and all(_done(r, want) for r in runs.values())
        summary = _summary(runs, pending_events, want)
        progress.update(summary, final=ready)
        if ready:
            ordered = [runs[r] for t in targets for r in run_ids[t]]
            return ordered[0] if len(ordered) == 1 else ordered
        if time.monotonic() >= deadline:
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
    hints.append("a run sleeping or waiting for an event on the virtual clock needs "
                 "lab.clock.advance(...) or lab.clock.to_next_timer()")
    if lab._host is not None and not lab._host.alive():
        hints.append("the function host is down (lab.restart_host())")
    return (f"Timed out after {timeout:.0f} s — {summary}.\nPossible reasons: " +
            "; ".join(hints) + ".")
