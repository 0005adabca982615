"""Executing steps over engine time: the history behind ``lab.stats`` (concurrency you can see).

Inngest's concurrency limits count *executing steps*: an SDK request in flight holds a slot;
a sleeping, waiting or between-steps run holds nothing. The scheduler reports each change:

* ``due(item)``: a call is due and wants a slot (it is *queued* until it gets one);
* ``started(item)``: the call took its slots and its SDK request is in flight;
* ``ended(item)``: the request is over and the slots are free again;
* ``dropped(item_id)``: a due call went away without running (its run was cancelled).

The recorder keeps two bounded histories (the newest entries win; ``reset`` clears both):

* *attempts*: one record per SDK call with its run, function, engine start and end, and a
  global sequence number at each end, so a release and an acquire in the same millisecond keep
  their real order (that order decides whether two calls overlapped);
* *points*: after every change, the executing and queued counts overall and for the function
  that changed, as absolute numbers, so a window of the newest points is still exact.

``summary`` answers ``GET /lab/v1/stats/steps``: the peak, the peak per value of a key
expression (evaluated on each run's triggering event, e.g. ``event.data.customer_id``) and the
series of (engine time, executing, queued).
"""

from __future__ import annotations

import itertools
from collections import Counter, deque
from dataclasses import dataclass

from . import expressions

MAX_ATTEMPTS = 50_000
MAX_POINTS = 100_000
OPEN = 1 << 62          # the end sequence of a call still in flight


@dataclass
class Attempt:
    item_id: str
    run_id: str
    function: str
    step: str | None
    start_ms: int
    start_seq: int
    end_ms: int | None = None
    end_seq: int = OPEN


class StepStats:
    def __init__(self, engine) -> None:
        self.engine = engine
        self.reset()

    def reset(self) -> None:
        self._seq = itertools.count(1)
        self.open: dict[str, Attempt] = {}
        self.closed: deque[Attempt] = deque(maxlen=MAX_ATTEMPTS)
        self.points: deque[tuple] = deque(maxlen=MAX_POINTS)
        self.executing: Counter[str] = Counter()
        self.queued: dict[str, str] = {}          # item id -> function slug
        self.queued_by_fn: Counter[str] = Counter()

    # -- what the scheduler reports -------------------------------------------------------
    def _function_of(self, item) -> str:
        run = self.engine.store.runs.get(item.run_id)
        return run.fn_slug if run else ""

    def due(self, item) -> None:
        if item.id in self.queued or item.id in self.open:
            return
        fn = self._function_of(item)
        self.queued[item.id] = fn
        self.queued_by_fn[fn] += 1
        self._point(fn)

    def dropped(self, item_id: str) -> None:
        fn = self.queued.pop(item_id, None)
        if fn is not None:
            self.queued_by_fn[fn] -= 1
            self._point(fn)

    def started(self, item) -> None:
        fn = self.queued.pop(item.id, None)
        if fn is not None:
            self.queued_by_fn[fn] -= 1
        else:
            fn = self._function_of(item)
        start = item.started_ms if item.started_ms is not None else self.engine.now()
        self.open[item.id] = Attempt(item.id, item.run_id, fn, item.target_name,
                                     start, next(self._seq))
        self.executing[fn] += 1
        self._point(fn, start)

    def ended(self, item) -> None:
        attempt = self.open.pop(item.id, None)
        if attempt is None:
            return
        attempt.end_ms, attempt.end_seq = self.engine.now(), next(self._seq)
        self.closed.append(attempt)
        self.executing[attempt.function] -= 1
        self._point(attempt.function)

    def _point(self, fn: str, at: int | None = None) -> None:
        when = self.engine.now() if at is None else at
        self.points.append((when, fn, self.executing[fn], self.queued_by_fn[fn],
                            sum(self.executing.values()), len(self.queued)))

    # -- what the lab asks ----------------------------------------------------------------
    def summary(self, function: str | None = None, key: str | None = None) -> dict:
        """Peak, per-key peaks and series of executing steps, for one function or all."""
        series = []
        for t, fn, fn_exec, fn_queued, all_exec, all_queued in self.points:
            if function is None:
                row = [t, all_exec, all_queued]
            elif fn == function:
                row = [t, fn_exec, fn_queued]
            else:
                continue
            if series and series[-1][1:] == row[1:]:
                continue                        # nothing changed for this view
            series.append(row)
        attempts = [a for a in itertools.chain(self.closed, self.open.values())
                    if function is None or a.function == function]
        key = key or self._default_key(function)
        return {"function": function, "key": key, "peak": max((r[1] for r in series), default=0),
                "peaks": self._peaks(attempts, key) if key else {},
                "series": series, "attempts": len(attempts),
                "in_flight": sum(1 for a in attempts if a.end_seq == OPEN)}

    def _default_key(self, function: str | None) -> str | None:
        """With no key given, a function's own keyed concurrency limit names the lanes."""
        fn = self.engine.store.functions.get(function) if function else None
        for spec in (fn.config.get("concurrency") or []) if fn else []:
            if spec.get("key"):
                return spec["key"]
        return None

    def _peaks(self, attempts: list[Attempt], key: str) -> dict[str, int]:
        values: dict[str, str | None] = {}
        changes = []
        for a in attempts:
            if a.run_id not in values:
                run = self.engine.store.runs.get(a.run_id)
                try:
                    values[a.run_id] = (expressions.key_value(key, run.events[0])
                                        if run and run.events else None)
                except expressions.ExpressionError:
                    values[a.run_id] = None
            value = values[a.run_id]
            if value is None:
                continue
            changes += [(a.start_seq, 1, value), (a.end_seq, -1, value)]
        now: Counter[str] = Counter()
        peaks: dict[str, int] = {}
        for _seq, delta, value in sorted(changes):
            now[value] += delta
            peaks[value] = max(peaks.get(value, 0), now[value])
        return dict(sorted(peaks.items()))
