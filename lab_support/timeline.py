"""The live run view: a Gantt of every step *attempt* per lane, and what was in flight.

Each attempt of a step is its own segment, coloured by its outcome: ``ok``, ``retried`` (it
failed and the engine tried again), ``failed`` (the last attempt failed), ``memo hit`` (a
rerun reused the stored output), ``cancelled`` (the run ended before it), plus ``sleeping``,
``waiting`` and ``running``. The gap between two attempts is the retry backoff.

Lanes are drawn in the order their first run started. Runs of one lane that overlap get rows
of their own inside the lane, so two runs of one customer side by side show as two rows.
Past ``MAX_LABELLED_LANES`` rows the lanes are compressed into a fixed height (every few get a
label) so 50 or 500 runs stay one readable picture.

The lower panel counts over time what Inngest's limits count: runs in flight and **steps
executing** (concurrency caps executing steps, not runs). With key lanes
(``lane="event.data.customer_id"``) it plots executing steps per key.

Everything here is pure drawing from plain data (``RunLane`` holds trace span dicts), tested
without an engine; ``lab.watch`` feeds it and redraws until the runs finish. The x axis is
time since the first run started, in readable units (``+250 ms``, ``+15 min``, ``+2 h``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .client import TERMINAL, parse_time
from .timefmt import elapsed_ticks, format_clock, format_elapsed

COLOURS = {
    "ok": "#55a868",
    "retried": "#dd8452",
    "failed": "#c44e52",
    "memo hit": "#a0a0a0",
    "cancelled": "#5a5a5a",
    "sleeping": "#4c72b0",
    "waiting": "#8172b3",
    "running": "#ccb974",
}
WAIT_OPS = {"WAIT_FOR_EVENT", "INVOKE", "WAIT_FOR_SIGNAL"}
IDLE_OPS = {"SLEEP"} | WAIT_OPS
MAX_LABELLED_LANES = 30       # more rows than this are compressed into a fixed height
MAX_KEY_LINES = 6             # more keys than this: the busiest key and the total
ROW_INCH, GANTT_MAX_INCH = 0.32, 7.0


@dataclass
class RunLane:
    """One run on the timeline. ``lane`` groups runs (a run id, or a concurrency key)."""

    run_id: str
    lane: str
    status: str
    started: datetime | None
    ended: datetime | None
    spans: list[dict] = field(default_factory=list)  # span dicts from the trace


@dataclass(frozen=True)
class Segment:
    """One attempt of one step (or a sleep/wait) on the time axis; ``end`` None = still going."""

    step: str
    attempt: int          # 1-based, as people count
    kind: str             # a key of COLOURS
    start: datetime
    end: datetime | None
    executing: bool       # the host was running code (counts against concurrency)


def _unfinished(status: str | None) -> bool:
    return status in ("RUNNING", "QUEUED", "WAITING", "SLEEPING", "SCHEDULED")


def span_kind(span: dict, run_status: str | None = None) -> str:
    """The outcome colour of a whole step span (its last attempt)."""
    if span.get("memoized"):
        return "memo hit"
    status = span.get("status")
    if run_status in TERMINAL and _unfinished(status):
        return "cancelled" if run_status == "CANCELLED" else "failed"
    op = span.get("stepOp") or ""
    if op == "SLEEP":
        return "sleeping"
    if op in WAIT_OPS:
        return "waiting"
    if status == "FAILED":
        return "failed"
    if _unfinished(status) and not span.get("endedAt"):
        return "running"
    return "ok"


def _attempt_kind(attempt: dict, last: bool, span: dict, run_status: str | None) -> str:
    status = attempt.get("status")
    if status == "FAILED":
        return "failed" if last and span.get("status") == "FAILED" else "retried"
    if _unfinished(status):
        if run_status in TERMINAL:
            return "cancelled" if run_status == "CANCELLED" else "failed"
        return "running"
    return "ok"


def segments(run: RunLane) -> list[Segment]:
    """Every attempt of every step of ``run``, in trace order."""
    out: list[Segment] = []
    for span in run.spans:
        if not span.get("stepID") and not span.get("stepOp"):
            continue  # function-level spans
        name, op = span.get("name") or "?", span.get("stepOp") or ""
        attempts = [a for a in span.get("childrenSpans") or []
                    if str(a.get("name", "")).startswith("Attempt") and a.get("startedAt")]
        if len(attempts) > 1 and not span.get("memoized"):
            for n, attempt in enumerate(attempts):
                out.append(Segment(name, n + 1,
                                   _attempt_kind(attempt, n == len(attempts) - 1, span, run.status),
                                   parse_time(attempt["startedAt"]),
                                   parse_time(attempt.get("endedAt")), op not in IDLE_OPS))
            continue
        began = parse_time(span.get("startedAt"))
        if began is None:
            continue
        kind = span_kind(span, run.status)
        out.append(Segment(name, span.get("attempts") or 1, kind, began,
                           parse_time(span.get("endedAt")),
                           op not in IDLE_OPS and kind not in ("memo hit",)))
    return out


def _end(seg: Segment, run: RunLane, now: datetime) -> datetime:
    """Where a segment stops on the axis: its end, else the run's end, else now."""
    return seg.end or run.ended or now


# -- counting what is in flight ------------------------------------------------------------
INSTANT = timedelta(milliseconds=1)  # a step that took "no time" still held its slot


def _step_function(intervals: list[tuple[datetime, datetime | None]], now: datetime):
    events = []
    for start, end in intervals:
        events.append((start, 1))
        if end is not None:  # one still going stays counted up to now
            events.append((max(end, start + INSTANT), -1))
    events.sort(key=lambda e: (e[0], e[1]))  # an end before a start at the same instant
    series, level = [], 0
    for when, delta in events:
        level += delta
        series.append((when, level))
    if series:
        series.append((max(now, series[-1][0]), level))
    return series


def in_flight_series(runs: list[RunLane], now: datetime) -> list[tuple[datetime, int]]:
    """Step function of how many runs had started and not yet ended."""
    return _step_function([(r.started, r.ended) for r in runs if r.started is not None], now)


def executing_series(runs: list[RunLane], now: datetime) -> list[tuple[datetime, int]]:
    """Step function of how many step attempts were executing code at once (sleeps, waits
    and memo hits hold no slot)."""
    return _step_function([(s.start, s.end or r.ended) for r in runs for s in segments(r)
                           if s.executing], now)


def executing_by_lane(runs: list[RunLane], now: datetime) -> dict[str, list]:
    by_lane: dict[str, list[RunLane]] = {}
    for run in runs:
        by_lane.setdefault(run.lane, []).append(run)
    return {lane: executing_series(group, now) for lane, group in by_lane.items()}


def peak(series: list[tuple[datetime, int]]) -> int:
    return max((n for _, n in series), default=0)


def timeline_end(runs: list[RunLane], now: datetime) -> datetime:
    """Where the time axis stops: now while a run is going, else when the last one ended."""
    started = [r for r in runs if r.started is not None]
    if not started or any(r.ended is None for r in started):
        return now
    return max(r.ended for r in started)


# -- layout ----------------------------------------------------------------------------------
def lane_order(runs: list[RunLane]) -> list[str]:
    """Lanes in the order their first run started (lanes with no started run last)."""
    first: dict[str, tuple] = {}
    for run in runs:
        # run ids are ULIDs: a tie on the start time goes to the run created first
        key = (run.started is None, run.started.timestamp() if run.started else 0.0, run.run_id)
        if run.lane not in first or key < first[run.lane]:
            first[run.lane] = key
    return sorted(first, key=first.get)


def pack_rows(runs: list[RunLane], now: datetime) -> tuple[list[str], dict[str, int], list[tuple]]:
    """Rows for the Gantt: each lane gets as many rows as it has overlapping runs.
    Returns (lanes in order, first row of each lane, [(row, run)])."""
    placed: list[tuple[int, RunLane]] = []
    lane_first: dict[str, int] = {}
    row = 0
    lanes = lane_order(runs)
    for lane in lanes:
        lane_first[lane] = row
        ends: list[datetime] = []  # per sub-row: when its last run ended
        members = sorted((r for r in runs if r.lane == lane),
                         key=lambda r: r.started.timestamp() if r.started else float("inf"))
        for run in members:
            begin = run.started or now
            for sub, busy_until in enumerate(ends):
                if busy_until <= begin:
                    ends[sub] = run.ended or now
                    break
            else:
                sub = len(ends)
                ends.append(run.ended or now)
            placed.append((row + sub, run))
        row += max(len(ends), 1)
    return lanes, lane_first, placed


def timeline_figure(runs: list[RunLane], now: datetime, title: str = "runs",
                    by_key: bool = False, queued: list[tuple[datetime, int]] | None = None):
    """``queued``: the engine's count of step calls waiting for a concurrency slot
    (``lab.stats(...).series``), drawn dashed in the lower panel when given."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.ticker import FixedLocator, MaxNLocator

    now = timeline_end(runs, now)
    lanes, lane_first, placed = pack_rows(runs, now)
    rows = max((r for r, _ in placed), default=-1) + 1 or 1
    compressed = rows > MAX_LABELLED_LANES
    gantt_h = min(GANTT_MAX_INCH, 0.6 + ROW_INCH * rows)
    fig = Figure(figsize=(10, gantt_h + 2.4))
    gantt, flight = fig.subplots(2, 1, sharex=True,
                                 gridspec_kw={"height_ratios": [gantt_h, 1.9]})
    starts = [r.started for r in runs if r.started]
    t0 = min(starts) if starts else now
    span_s = max((now - t0).total_seconds(), 0.001)

    def x(when: datetime) -> float:
        return (when - t0).total_seconds()

    # Steps of milliseconds next to a 4-hour sleep would vanish: give every segment a
    # minimum visible width (a sliver of the whole window).
    min_width = span_s * 0.004
    kinds_seen: set[str] = set()
    bar_h = 0.8 if not compressed else 0.9
    for row, run in placed:
        if run.started:
            gantt.broken_barh([(x(run.started), x(run.ended or now) - x(run.started))],
                              (row - bar_h / 2, bar_h), facecolors="#eeeeee",
                              edgecolors="none" if compressed else "#bbbbbb")
        for seg in segments(run):
            width = max(x(_end(seg, run, now)) - x(seg.start), min_width)
            gantt.broken_barh([(x(seg.start), width)], (row - bar_h * 0.4, bar_h * 0.8),
                              facecolors=COLOURS[seg.kind],
                              edgecolors="white" if not compressed else "none",
                              linewidth=0.6)
            kinds_seen.add(seg.kind)
    if compressed:
        every = max(1, len(lanes) // 20)
        shown = lanes[::every]
        gantt.yaxis.set_major_locator(FixedLocator([lane_first[lane] for lane in shown]))
        gantt.set_yticklabels([str(lane)[:24] for lane in shown], fontsize=7)
        title += f"  ({len(runs)} runs in {rows} rows; every {every}. lane labelled)" \
            if every > 1 else f"  ({len(runs)} runs in {rows} rows)"
    else:
        gantt.set_yticks([lane_first[lane] for lane in lanes],
                         [str(lane)[:24] for lane in lanes])
    gantt.set_ylim(rows - 0.5, -0.5)
    gantt.set_title(title, loc="left", fontsize=10)
    gantt.grid(axis="x", color="#e6e6e6", linewidth=0.6)
    gantt.set_axisbelow(True)

    _draw_flight(flight, runs, now, x, by_key, queued)
    ticks = elapsed_ticks(span_s)
    flight.set_xticks(ticks, [format_elapsed(t) for t in ticks])
    flight.set_xlim(-span_s * 0.01, span_s * 1.02)
    flight.set_xlabel(f"engine time since the first run started ({format_clock(t0)} UTC)",
                      fontsize=8)
    flight.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
    order = [k for k in COLOURS if k in kinds_seen] or ["ok"]
    fig.legend(handles=[Patch(color=COLOURS[k], label=k) for k in order], fontsize=8,
               ncol=len(order), loc="upper right", frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return fig


def _draw_flight(ax, runs: list[RunLane], now: datetime, x, by_key: bool,
                 queued: list[tuple[datetime, int]] | None = None) -> None:
    def plot(series, **style):
        if series:
            ax.step([x(t) for t, _ in series], [n for _, n in series], where="post", **style)

    starts = [r.started for r in runs if r.started]
    if queued and starts:  # only the watched window of the engine's whole history
        window = [(t, n) for t, n in queued if min(starts) <= t <= now]
        if any(n for _, n in window):
            plot(window + [(now, window[-1][1])], linewidth=1.2, linestyle="--",
                 color="#8172b3", label=f"queued for a slot (peak {peak(window)})")

    if by_key:
        per_key = executing_by_lane(runs, now)
        busiest = sorted(per_key, key=lambda k: -peak(per_key[k]))
        if len(per_key) <= MAX_KEY_LINES:
            for key in busiest:
                plot(per_key[key], linewidth=1.8,
                     label=f"{str(key)[:18]} (peak {peak(per_key[key])})")
        else:
            top = busiest[0]
            plot(per_key[top], linewidth=1.8, color="#c44e52",
                 label=f"busiest key {str(top)[:18]} (peak {peak(per_key[top])})")
            total = executing_series(runs, now)
            plot(total, linewidth=1.2, color="#4c72b0", label=f"all keys (peak {peak(total)})")
        ax.set_ylabel("steps executing\nper key", fontsize=8)
    else:
        runs_series, steps_series = in_flight_series(runs, now), executing_series(runs, now)
        plot(runs_series, linewidth=1.8, color="#4c72b0",
             label=f"runs in flight (peak {peak(runs_series)})")
        plot(steps_series, linewidth=1.8, color="#dd8452",
             label=f"steps executing (peak {peak(steps_series)})")
        ax.set_ylabel("in flight", fontsize=8)
    ax.set_ylim(bottom=0)
    ax.grid(color="#e6e6e6", linewidth=0.6)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="upper left", frameon=False)


# -- words -----------------------------------------------------------------------------------
def summary_text(runs: list[RunLane]) -> str:
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.status] = counts.get(run.status, 0) + 1
    parts = ", ".join(f"{n} {status.lower()}" for status, n in sorted(counts.items()))
    return f"{len(runs)} run(s): {parts or 'none yet'}"


def attempts_text(runs: list[RunLane], limit: int = 6) -> list[str]:
    """One line per step that took more than one attempt, e.g.
    ``save-draft (run 1a2b3c4d): attempt 1 retried → attempt 2 retried → attempt 3 ok``."""
    lines = []
    for run in runs:
        by_step: dict[str, list[Segment]] = {}
        for seg in segments(run):
            by_step.setdefault(seg.step, []).append(seg)
        for step, segs in by_step.items():
            if len(segs) > 1:
                chain = " → ".join(f"attempt {s.attempt} {s.kind}" for s in segs)
                lines.append(f"{step} (run {run.run_id[-8:]}): {chain}")
    if len(lines) > limit:
        lines = lines[:limit] + [f"… and {len(lines) - limit} more retried step(s)"]
    return lines
