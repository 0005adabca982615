"""stepstats rebuilt from traces: what a real dev server's trace spans say about executing steps.

The traces here are the shapes the OSS dev server answers with (GraphQL ``runTrace``), including
its habit of leaving attempt spans open after a run has finished.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from lab_support import stepstats

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=timezone.utc)


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def step(name, attempts, *, ended=None, op="RUN"):
    return {"name": name, "stepID": name, "stepOp": op, "status": "COMPLETED",
            "startedAt": attempts[0][0], "endedAt": ended,
            "childrenSpans": [{"name": f"Attempt {n}", "startedAt": s, "endedAt": e}
                              for n, (s, e) in enumerate(attempts)]}


def trace(*steps, ended=None):
    return {"name": "fn", "status": "COMPLETED", "startedAt": at(0), "endedAt": ended,
            "childrenSpans": list(steps)}


def test_closed_attempts_are_kept_as_they_are():
    got = stepstats.attempt_intervals(trace(step("a", [(at(1), at(2)), (at(5), at(6))],
                                                 ended=at(6)), ended=at(7)))
    assert got == [(T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)),
                   (T0 + timedelta(seconds=5), T0 + timedelta(seconds=6))]


def test_an_open_attempt_of_a_finished_run_ends_at_what_came_after_it():
    got = stepstats.attempt_intervals(trace(
        step("retried", [(at(1), None), (at(4), None)], ended=None),   # open twice, step open
        step("once", [(at(2), None)], ended=at(3)),                    # open, step closed
        ended=at(9)))
    assert got == [(T0 + timedelta(seconds=1), T0 + timedelta(seconds=4)),   # next attempt
                   (T0 + timedelta(seconds=4), T0 + timedelta(seconds=9)),   # run's end
                   (T0 + timedelta(seconds=2), T0 + timedelta(seconds=3))]   # step's end


def test_an_attempt_of_a_running_run_stays_open():
    got = stepstats.attempt_intervals(trace(step("slow", [(at(1), None)])))
    assert got == [(T0 + timedelta(seconds=1), None)]


def test_sleeps_waits_and_memo_hits_hold_no_slot():
    memo = step("memo", [(at(1), at(2))])
    memo["memoized"] = True
    got = stepstats.attempt_intervals(trace(
        step("nap", [(at(1), None)], op="SLEEP"), step("wait", [(at(1), None)], op="WAIT_FOR_EVENT"),
        memo, ended=at(3)))
    assert got == []


class FakeApi:
    """The two calls from_traces makes, answered with finished runs whose spans stayed open."""

    def __init__(self, traces):
        self.traces = traces

    def runs(self, function_ids=None, limit=400):
        return [{"id": rid, "endedAt": t["endedAt"]} for rid, t in self.traces.items()]

    def trace(self, run_id):
        return self.traces[run_id]


def test_peaks_of_finished_runs_with_open_spans_are_not_inflated():
    # ten runs one after another, each step left open by the server: one at a time, never ten
    traces = {f"r{n}": trace(step("work", [(at(10 * n), None)]), ended=at(10 * n + 5))
              for n in range(10)}
    stats = stepstats.from_traces(FakeApi(traces), None, None)
    assert stats.peak == 1, stats.series
