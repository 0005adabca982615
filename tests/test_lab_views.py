"""Trace tables, the timeline drawing and small parsers, from recorded trace shapes."""

from datetime import datetime, timedelta, timezone

import pytest

from lab_support import tracing
from lab_support.controls import to_seconds
from lab_support.runs import RunList, normalize_status
from lab_support.timeline import (
    RunLane,
    in_flight_series,
    span_kind,
    timeline_end,
    timeline_figure,
)

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def at(seconds):
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


TRACE = {"name": "Run", "status": "FAILED", "childrenSpans": [
    {"name": "load", "stepID": "a1", "stepOp": "RUN", "status": "COMPLETED", "attempts": 1,
     "startedAt": at(0), "endedAt": at(1), "outputID": "o1", "memoized": True},
    {"name": "load", "stepID": "a1", "stepOp": "RUN", "status": "COMPLETED", "attempts": 1,
     "startedAt": at(0), "endedAt": at(1), "outputID": "o1"},  # the real server's duplicate
    {"name": "nap", "stepID": "b2", "stepOp": "SLEEP", "status": "COMPLETED", "attempts": 1,
     "startedAt": at(1), "endedAt": at(3600)},
    {"name": "charge", "stepID": "c3", "stepOp": "RUN", "status": "FAILED", "attempts": 3,
     "startedAt": at(3600), "endedAt": at(3700), "outputID": "o3",
     "childrenSpans": [{"name": "Attempt 0"}, {"name": "Attempt 1"}, {"name": "Attempt 2"}]},
    {"name": "function error", "status": "FAILED"},
]}


def test_trace_rows_say_what_happened_to_each_step():
    rows = tracing.trace_rows(TRACE, {"o1": '{"customer": "c-1"}', "o3": "ValueError: boom"})
    assert [(r["step"], r["op"], r["attempts"], r["source"]) for r in rows] == [
        ("load", "RUN", 1, "memo hit"), ("nap", "SLEEP", 1, "executed"),
        ("charge", "RUN", 3, "retried")]
    assert rows[0]["output"] == '{"customer": "c-1"}'
    assert rows[2]["status"] == "FAILED" and rows[2]["output"].startswith("ValueError")
    frame = tracing.trace_frame(rows)
    assert list(frame.columns) == tracing.COLUMNS and len(frame) == 3


def test_failed_step_is_the_replay_point():
    assert tracing.failed_step(TRACE)["stepID"] == "c3"
    assert tracing.failed_step({"childrenSpans": []}) is None


def test_output_value_and_summary():
    assert tracing.output_value({"data": '"hi"'}) == '"hi"'
    assert tracing.output_value({"error": {"name": "E", "message": "m"}}) == "E: m"
    assert tracing.summarize('"' + "x" * 200 + '"').endswith("…")
    assert tracing.summarize(None) == ""


def test_span_kinds_for_colouring():
    kinds = [span_kind(s) for s in tracing.step_spans(TRACE)]
    assert kinds == ["memo hit", "sleeping", "failed"]
    assert span_kind({"stepOp": "WAIT_FOR_EVENT"}) == "waiting"
    assert span_kind({"stepOp": "RUN", "attempts": 2, "status": "COMPLETED"}) == "retried"


def test_in_flight_counts_overlapping_runs():
    runs = [RunLane("r1", "a", "COMPLETED", T0, T0 + timedelta(seconds=10)),
            RunLane("r2", "b", "RUNNING", T0 + timedelta(seconds=5), None),
            RunLane("r3", "c", "QUEUED", None, None)]
    series = in_flight_series(runs, now=T0 + timedelta(seconds=20))
    assert [n for _, n in series] == [1, 2, 1, 1]  # r2 is still in flight at 'now'
    assert series[-1][0] == T0 + timedelta(seconds=20)


def test_the_time_axis_stops_when_the_last_run_ended():
    done = [RunLane("r1", "a", "COMPLETED", T0, T0 + timedelta(seconds=10))]
    later = T0 + timedelta(hours=5)
    assert timeline_end(done, later) == T0 + timedelta(seconds=10)
    going = done + [RunLane("r2", "b", "RUNNING", T0, None)]
    assert timeline_end(going, later) == later


def test_timeline_figure_has_a_gantt_and_an_in_flight_panel():
    lanes = [RunLane("r1", "cust-1", "FAILED", T0, T0 + timedelta(seconds=3700),
                     TRACE["childrenSpans"])]
    fig = timeline_figure(lanes, now=T0 + timedelta(hours=2), title="1 run")
    gantt, flight = fig.axes
    assert [t.get_text() for t in gantt.get_yticklabels()] == ["cust-1"]
    assert flight.get_ylabel() == "in flight"


def test_durations_are_read_in_any_form():
    assert to_seconds(timedelta(hours=4)) == 14400
    assert to_seconds("90s") == 90 and to_seconds("2d") == 172800 and to_seconds(5) == 5
    with pytest.raises(ValueError, match="Cannot read"):
        to_seconds("soon")
    with pytest.raises(ValueError, match="negative"):
        to_seconds(-1)


def test_status_names_are_normalised():
    assert normalize_status("failed") == ["FAILED"]
    assert normalize_status(["Scheduled", "Running"]) == ["QUEUED", "RUNNING"]
    assert normalize_status(None) is None
    with pytest.raises(ValueError, match="Unknown run status"):
        normalize_status("exploded")


def test_run_list_is_a_list_with_a_table():
    runs = RunList([{"id": "r1", "status": "COMPLETED", "function": {"slug": "app-a"}}])
    assert runs.ids == ["r1"] and runs[0]["status"] == "COMPLETED"
    assert "app-a" in runs._repr_html_()
    assert list(runs.frame()["function"]) == ["app-a"]


# A real dev server's trace of a failed run, read right after the run failed (recorded shape;
# attempts already turned into counts by the client): stale copies of each step.
REAL_TRACE = {"name": "Run", "status": "QUEUED", "childrenSpans": [
    {"name": "Finalization", "status": "RUNNING", "stepOp": None, "stepID": None},
    {"name": "first", "stepID": "f1", "stepOp": "RUN", "status": "RUNNING", "attempts": 2,
     "startedAt": at(1), "childrenSpans": [{"name": "Attempt 0"}, {"name": "Attempt 1"}]},
    {"name": "first", "stepID": "f1", "stepOp": "RUN", "status": "QUEUED", "attempts": 1,
     "startedAt": at(0)},
    {"name": "first", "stepID": "f1", "stepOp": "RUN", "status": "FAILED", "attempts": 1,
     "startedAt": at(0.5), "endedAt": at(0.6), "outputID": "x1"},
    {"name": "nap", "stepID": "n1", "stepOp": "SLEEP", "status": "WAITING", "attempts": 1,
     "startedAt": at(2)},
    {"name": "second", "stepID": "s1", "stepOp": "RUN", "status": "FAILED", "attempts": 1,
     "startedAt": at(2), "endedAt": at(3), "outputID": "x2"},
    {"name": "second", "stepID": "s1", "stepOp": "RUN", "status": "RUNNING", "attempts": 2,
     "startedAt": at(3), "childrenSpans": [{"name": "Attempt 0"}, {"name": "Attempt 1"}]},
    {"name": "second", "stepID": "s1", "stepOp": None, "status": "FAILED", "attempts": 2,
     "startedAt": at(3.1), "endedAt": at(5), "outputID": "x3"},
]}


def test_a_real_servers_duplicate_spans_merge_into_one_row_per_step():
    rows = tracing.trace_rows(REAL_TRACE)
    assert [(r["step"], r["op"], r["attempts"], r["status"]) for r in rows] == [
        ("first", "RUN", 2, "FAILED"), ("nap", "SLEEP", 1, "WAITING"),
        ("second", "RUN", 2, "FAILED")]
    second = rows[2]
    assert (second["started"], second["ended"]) == (T0 + timedelta(seconds=2),
                                                    T0 + timedelta(seconds=5))
    # The replay point is the failure that ended the run, not a retried earlier attempt.
    assert tracing.failed_step(REAL_TRACE)["stepID"] == "s1"
    done = dict(REAL_TRACE, childrenSpans=REAL_TRACE["childrenSpans"] + [
        {"name": "first", "stepID": "f1", "stepOp": "RUN", "status": "COMPLETED",
         "attempts": 2, "startedAt": at(1), "endedAt": at(1.2), "outputID": "x4"}])
    first = tracing.step_spans(done)[0]
    assert (first["status"], first["attempts"], first["outputID"]) == ("COMPLETED", 2, "x4")


def test_a_sleep_left_waiting_is_closed_at_its_wake_time_when_the_run_went_on():
    def nap(name, start, until):
        return {"name": name, "stepID": name, "stepOp": "SLEEP", "status": "WAITING",
                "startedAt": at(start), "stepInfo": {"sleepUntil": at(until)}}

    trace = {"childrenSpans": [
        nap("nap", 10, 7210),
        {"name": "after", "stepID": "a1", "stepOp": "RUN", "status": "FAILED",
         "startedAt": at(10.001), "endedAt": at(7211)},   # a real server's early copy
        nap("open", 7300, 9000)]}
    rows = {r["step"]: r for r in tracing.trace_rows(trace)}
    assert rows["nap"]["status"] == "COMPLETED"
    assert rows["nap"]["ended"] - rows["nap"]["started"] == timedelta(hours=2)
    assert rows["open"]["status"] == "WAITING" and rows["open"]["ended"] is None
