"""Trace tables, the timeline drawing and small parsers, from recorded trace shapes."""

from datetime import datetime, timedelta, timezone

import pytest

from lab_support import tracing
from lab_support.controls import to_seconds
from lab_support.runs import RunList, normalize_status
from lab_support.timeline import (
    COLOURS,
    RunLane,
    attempts_text,
    executing_by_lane,
    executing_series,
    in_flight_series,
    pack_rows,
    peak,
    segments,
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
    assert rows[1]["duration"] == timedelta(seconds=3599)
    frame = tracing.trace_frame(rows)
    assert list(frame.columns) == tracing.COLUMNS and len(frame) == 3
    # The values stay computable (checks subtract them); only the display is short.
    assert frame.iloc[1]["ended"] - frame.iloc[1]["started"] == timedelta(seconds=3599)
    shown = frame._repr_html_()
    assert "00:00:01.000" in shown and "59\u00a0min 59\u00a0s" in shown
    assert "2026-01-01" not in shown and "+00:00" not in shown, "no long timestamps to wrap"


def test_a_cancelled_runs_sleep_is_cancelled_not_running():
    trace = {"status": "CANCELLED", "childrenSpans": [
        {"name": "nap", "stepID": "n", "stepOp": "SLEEP", "status": "RUNNING",
         "startedAt": at(0)}]}
    (row,) = tracing.trace_rows(trace)
    assert (row["status"], row["source"], row["duration"]) == ("CANCELLED", "cancelled", None)
    assert span_kind(trace["childrenSpans"][0], "CANCELLED") == "cancelled"


def test_a_failed_single_attempt_is_failed_not_executed():
    trace = {"status": "FAILED", "childrenSpans": [
        {"name": "charge", "stepID": "c", "stepOp": "RUN", "status": "FAILED", "attempts": 1,
         "startedAt": at(0), "endedAt": at(1)}]}
    assert tracing.trace_rows(trace)[0]["source"] == "failed"


def test_trace_times_show_the_day_only_across_days():
    rows = tracing.trace_rows({"status": "COMPLETED", "childrenSpans": [
        {"name": "wait", "stepID": "w", "stepOp": "SLEEP", "status": "COMPLETED",
         "startedAt": at(0), "endedAt": at(3 * 86400)}]})
    shown = tracing.display_frame(tracing.trace_frame(rows))
    assert shown.loc[0, "started"] == "Jan\u00a001\u00a000:00:00.000"
    assert shown.loc[0, "duration"] == "3\u00a0d"


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
    assert span_kind({"stepOp": "RUN", "attempts": 2, "status": "COMPLETED"}) == "ok"
    assert span_kind({"stepOp": "RUN", "status": "RUNNING"}) == "running"


RETRIED = {"name": "save", "stepID": "s", "stepOp": "RUN", "status": "COMPLETED", "attempts": 3,
           "startedAt": at(1), "endedAt": at(46), "childrenSpans": [
               {"name": "Attempt 0", "status": "FAILED", "startedAt": at(1), "endedAt": at(1.1)},
               {"name": "Attempt 1", "status": "FAILED", "startedAt": at(16), "endedAt": at(16.1)},
               {"name": "Attempt 2", "status": "COMPLETED", "startedAt": at(45.9),
                "endedAt": at(46)}]}
LOAD = {"name": "load", "stepID": "l", "stepOp": "RUN", "status": "COMPLETED", "attempts": 1,
        "startedAt": at(0), "endedAt": at(0.5)}


def lane(run_id, key, start, end, spans=(), status="COMPLETED"):
    return RunLane(run_id, key, status, T0 + timedelta(seconds=start),
                   None if end is None else T0 + timedelta(seconds=end), list(spans))


def test_each_attempt_is_its_own_segment_coloured_by_outcome():
    run = lane("r1", "r1", 0, 46.5, [LOAD, RETRIED])
    segs = segments(run)
    assert [(s.step, s.attempt, s.kind) for s in segs] == [
        ("load", 1, "ok"), ("save", 1, "retried"), ("save", 2, "retried"), ("save", 3, "ok")]
    assert segs[1].end < segs[2].start, "the backoff is a gap between attempts"
    assert attempts_text([run]) == ["save (run r1): attempt 1 retried → attempt 2 retried → "
                                    "attempt 3 ok"]
    failed = dict(RETRIED, status="FAILED", childrenSpans=[
        dict(a, status="FAILED") for a in RETRIED["childrenSpans"]])
    assert [s.kind for s in segments(lane("r2", "r2", 0, 47, [failed], "FAILED"))] == \
        ["retried", "retried", "failed"]


def test_the_gantt_draws_one_bar_per_attempt():
    run = lane("r1", "r1", 0, 46.5, [LOAD, RETRIED])
    fig = timeline_figure([run], now=T0 + timedelta(seconds=50), title="1 run")
    gantt = fig.axes[0]
    colours = [tuple(round(c, 3) for c in coll.get_facecolor()[0][:3])
               for coll in gantt.collections]
    from matplotlib.colors import to_rgb
    retried = tuple(round(c, 3) for c in to_rgb(COLOURS["retried"]))
    assert colours.count(retried) == 2, "two failed-and-retried attempts, two bars"
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["ok", "retried"], "the legend lists only what is drawn"


def test_lanes_are_in_start_order_and_overlapping_runs_get_rows():
    runs = [lane("r3", "c-late", 30, 31), lane("r1", "c-1", 0, 10), lane("r2", "c-1", 5, 12),
            lane("r4", "c-1", 11, 13), lane("r5", "c-idle", 0, None, status="QUEUED")]
    runs[-1].started = None
    lanes, first_row, placed = pack_rows(runs, now=T0 + timedelta(seconds=40))
    assert lanes == ["c-1", "c-late", "c-idle"]
    rows = {run.run_id: row for row, run in placed}
    assert rows["r1"] == 0 and rows["r2"] == 1, "r2 overlaps r1: a second row"
    assert rows["r4"] == 0, "r4 starts after r1 ended: back on the first row"
    assert first_row == {"c-1": 0, "c-late": 2, "c-idle": 3}


def test_fifty_runs_stay_one_readable_picture():
    runs = [lane(f"r{i:03d}", f"r{i:03d}", i * 0.3, i * 0.3 + 2,
                 [dict(LOAD, startedAt=at(i * 0.3), endedAt=at(i * 0.3 + 1.9))])
            for i in range(120)]
    fig = timeline_figure(runs, now=T0 + timedelta(seconds=60), title="120 runs")
    assert fig.get_size_inches()[1] <= 10, "height is capped, not one row per inch"
    gantt, flight = fig.axes
    assert len(gantt.get_yticklabels()) <= 30, "labels thinned out"
    assert "120 runs" in gantt.get_title(loc="left")
    labels = [t.get_text() for t in flight.get_legend().get_texts()]
    assert any(label.startswith("runs in flight (peak") for label in labels)
    assert any(label.startswith("steps executing (peak") for label in labels)


def test_key_lanes_plot_executing_steps_per_key():
    a1 = dict(LOAD, startedAt=at(0), endedAt=at(2))
    a2 = dict(LOAD, startedAt=at(1), endedAt=at(3))
    nap = {"name": "nap", "stepID": "n", "stepOp": "SLEEP", "status": "COMPLETED",
           "startedAt": at(0), "endedAt": at(50)}
    runs = [lane("r1", "c-1", 0, 2, [a1]), lane("r2", "c-1", 1, 3, [a2]),
            lane("r3", "c-2", 0, 50, [nap])]
    now = T0 + timedelta(seconds=60)
    assert peak(executing_series(runs, now)) == 2, "sleeps hold no slot"
    instant = dict(LOAD, startedAt=at(5), endedAt=at(5))  # an attempt of "no" duration
    assert peak(executing_series([lane("r4", "c-3", 5, 5, [instant])], now)) == 1
    per_key = executing_by_lane(runs, now)
    assert peak(per_key["c-1"]) == 2 and peak(per_key["c-2"]) == 0
    fig = timeline_figure(runs, now, by_key=True)
    labels = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert labels[0] == "c-1 (peak 2)"
    assert "per key" in fig.axes[1].get_ylabel()


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


def test_timeline_figure_has_a_gantt_and_an_in_flight_panel_with_readable_ticks():
    lanes = [RunLane("r1", "cust-1", "FAILED", T0, T0 + timedelta(seconds=3700),
                     TRACE["childrenSpans"])]
    fig = timeline_figure(lanes, now=T0 + timedelta(hours=2), title="1 run")
    gantt, flight = fig.axes
    assert [t.get_text() for t in gantt.get_yticklabels()] == ["cust-1"]
    assert flight.get_ylabel() == "in flight"
    ticks = [t.get_text() for t in flight.get_xticklabels()]
    assert ticks[0] == "0" and "+30 min" in ticks and "+1 h" in ticks, ticks
    assert "00:00:00.000 UTC" in flight.get_xlabel()


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


def test_the_engines_queue_is_drawn_when_given():
    runs = [lane("r1", "c-1", 0, 10, [dict(LOAD, startedAt=at(0), endedAt=at(10))])]
    queued = [(T0 - timedelta(seconds=50), 4),  # before the watched window: left out
              (T0 + timedelta(seconds=1), 3), (T0 + timedelta(seconds=6), 0)]
    fig = timeline_figure(runs, now=T0 + timedelta(seconds=10), queued=queued)
    labels = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert "queued for a slot (peak 3)" in labels


def test_a_step_starts_when_it_ran_not_when_it_was_queued():
    queued = {"name": "agent", "stepID": "a1", "stepOp": "RUN", "status": "QUEUED",
              "startedAt": at(0)}
    ran = {"name": "agent", "stepID": "a1", "stepOp": "RUN", "status": "COMPLETED",
           "startedAt": at(4), "endedAt": at(7), "outputID": "o1"}
    row = tracing.trace_rows({"name": "fn", "status": "COMPLETED", "startedAt": at(0),
                              "endedAt": at(8), "childrenSpans": [queued, ran]})[0]
    assert (row["started"], row["ended"]) == (T0 + timedelta(seconds=4), T0 + timedelta(seconds=7))
