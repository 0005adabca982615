"""The live run view: a Gantt timeline of steps per lane, and runs in flight over time.

``timeline_figure`` is pure drawing from plain data, so it is tested without an engine;
``lab.watch`` feeds it from the engine and redraws until the runs finish.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

COLOURS = {
    "executed": "#55a868",
    "memo hit": "#8c8c8c",
    "retried": "#dd8452",
    "failed": "#c44e52",
    "sleeping": "#4c72b0",
    "waiting": "#8172b3",
    "running": "#ccb974",
}
WAIT_OPS = {"WAIT_FOR_EVENT", "INVOKE", "WAIT_FOR_SIGNAL"}


@dataclass
class RunLane:
    """One run on the timeline. ``lane`` groups runs (a run id, or a concurrency key)."""

    run_id: str
    lane: str
    status: str
    started: datetime | None
    ended: datetime | None
    spans: list[dict] = field(default_factory=list)  # span dicts from the trace


def span_kind(span: dict) -> str:
    if span.get("memoized"):
        return "memo hit"
    op = span.get("stepOp") or ""
    if op == "SLEEP":
        return "sleeping"
    if op in WAIT_OPS:
        return "waiting"
    if span.get("status") == "FAILED":
        return "failed"
    if (span.get("attempts") or 1) > 1:
        return "retried"
    if span.get("status") in ("RUNNING", "QUEUED", "WAITING") and not span.get("endedAt"):
        return "running"
    return "executed"


def in_flight_series(runs: list[RunLane], now: datetime) -> list[tuple[datetime, int]]:
    """Step function of how many runs had started and not yet ended."""
    events = []
    for run in runs:
        if run.started is None:
            continue
        events.append((run.started, 1))
        if run.ended is not None:  # a run still going stays counted up to now
            events.append((run.ended, -1))
    events.sort(key=lambda e: (e[0], e[1]))  # an end before a start at the same instant
    series, level = [], 0
    for when, delta in events:
        level += delta
        series.append((when, level))
    if series:
        series.append((max(now, series[-1][0]), level))
    return series


def timeline_end(runs: list[RunLane], now: datetime) -> datetime:
    """Where the time axis stops: now while a run is going, else when the last one ended."""
    started = [r for r in runs if r.started is not None]
    if not started or any(r.ended is None for r in started):
        return now
    return max(r.ended for r in started)


def timeline_figure(runs: list[RunLane], now: datetime, title: str = "runs"):
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    from .client import parse_time

    lanes = sorted({r.lane for r in runs}, key=str)
    fig = Figure(figsize=(10, 1.2 + 0.45 * max(len(lanes), 1) + 1.6))
    gantt, flight = fig.subplots(2, 1, sharex=True,
                                 gridspec_kw={"height_ratios": [max(len(lanes), 1), 2]})
    # Steps of milliseconds next to a 4-hour sleep would vanish: give every span a
    # minimum visible width (a sliver of the whole window).
    now = timeline_end(runs, now)
    starts = [r.started for r in runs if r.started]
    window = (date2num(now) - date2num(min(starts))) if starts else 0
    min_width = max(window * 0.004, 1e-9)
    for run in runs:
        y = lanes.index(run.lane)
        if run.started:
            start = date2num(run.started)
            gantt.broken_barh([(start, date2num(run.ended or now) - start)], (y - 0.4, 0.8),
                              facecolors="#eeeeee", edgecolors="#bbbbbb")
        for span in run.spans:
            began = parse_time(span.get("startedAt"))
            if began is None:
                continue
            finished = parse_time(span.get("endedAt")) or now
            width = max(date2num(finished) - date2num(began), min_width)
            gantt.broken_barh([(date2num(began), width)], (y - 0.3, 0.6),
                              facecolors=COLOURS[span_kind(span)])
    gantt.set_yticks(range(len(lanes)), [str(lane)[:24] for lane in lanes])
    gantt.set_ylim(-0.6, max(len(lanes), 1) - 0.4)
    gantt.invert_yaxis()
    gantt.set_title(title, loc="left", fontsize=10)
    series = in_flight_series(runs, now)
    if series:
        flight.step([date2num(t) for t, _ in series], [n for _, n in series], where="post")
    flight.set_ylabel("in flight")
    flight.yaxis.set_major_locator(MaxNLocator(integer=True))
    locator = AutoDateLocator()
    flight.xaxis.set_major_locator(locator)
    flight.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    fig.legend(handles=[Patch(color=c, label=k) for k, c in COLOURS.items()],
               fontsize=7, ncol=len(COLOURS), loc="upper right")
    fig.tight_layout()
    return fig


def summary_text(runs: list[RunLane]) -> str:
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.status] = counts.get(run.status, 0) + 1
    parts = ", ".join(f"{n} {status.lower()}" for status, n in sorted(counts.items()))
    return f"{len(runs)} run(s): {parts or 'none yet'}"
