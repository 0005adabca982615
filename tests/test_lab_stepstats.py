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
        step("once", [(at(6), None)], ended=at(7)),                    # open, step closed
        step("last", [(at(8), None)], ended=None),                     # open, nothing after
        ended=at(9)))
    assert got == [(T0 + timedelta(seconds=1), T0 + timedelta(seconds=4)),   # next attempt
                   (T0 + timedelta(seconds=4), T0 + timedelta(seconds=6)),   # next step
                   (T0 + timedelta(seconds=6), T0 + timedelta(seconds=7)),   # step's end
                   (T0 + timedelta(seconds=8), T0 + timedelta(seconds=9))]   # run's end


def test_an_open_first_step_does_not_overlap_the_runs_slow_step():
    # Seen on a real server: load's attempt stays open after the run completed, while the
    # slow agent step that came after it is closed. Load ended when agent started.
    got = stepstats.attempt_intervals(trace(
        step("load", [(at(0), None)]), step("agent", [(at(1), at(4))], ended=at(4)),
        step("save", [(at(4.5), at(4.6))], ended=at(4.6)), ended=at(5)))
    assert got[0] == (T0, T0 + timedelta(seconds=1))
    overlapping = [(a, b) for a, b in got if a < T0 + timedelta(seconds=2) < b]
    assert len(overlapping) == 1, got


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


def queued_copy(name, queued_at):
    """The copy a real server keeps of a step while it waits for a slot: its startedAt is the
    moment it was queued, and it never ends (seen on 253303cd, next to the copy that ran)."""
    return {"name": name, "stepID": name, "stepOp": "RUN", "status": "QUEUED",
            "startedAt": queued_at, "endedAt": None}


def test_time_queued_for_a_slot_is_not_executing():
    # limit 1: three runs queue at 0 and execute one after another, each for 3 s
    traces = {f"r{n}": trace(queued_copy("agent", at(0)),
                             step("agent", [(at(3 * n), at(3 * n + 3))], ended=at(3 * n + 3)),
                             ended=at(3 * n + 3.1))
              for n in range(3)}
    stats = stepstats.from_traces(FakeApi(traces), None, None)
    assert stats.peak == 1, stats.series
    # a step still waiting for its slot holds none
    waiting = trace(queued_copy("agent", at(1)))
    assert stepstats.attempt_intervals(waiting) == []


def test_an_open_step_ends_when_the_next_one_was_queued_not_when_it_got_a_slot():
    # load's attempt stays open; agent was queued at 1 and waited for a slot until 30
    got = stepstats.attempt_intervals(trace(
        step("load", [(at(0), None)]), queued_copy("agent", at(1)),
        step("agent", [(at(30), at(33))], ended=at(33)), ended=at(34)))
    assert got == [(T0, T0 + timedelta(seconds=1)),
                   (T0 + timedelta(seconds=30), T0 + timedelta(seconds=33))]
