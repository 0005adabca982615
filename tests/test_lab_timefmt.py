"""Readable times and durations: what the trace table and the watch axis print."""

from datetime import datetime, timedelta, timezone

import pytest

from lab_support.timefmt import (
    elapsed_ticks,
    format_clock,
    format_duration,
    format_elapsed,
    nice_step,
    spans_days,
)


@pytest.mark.parametrize("seconds, text", [
    (0.0123, "12 ms"), (0.85, "850 ms"), (1.5, "1.5 s"), (45, "45 s"), (90, "1 min 30 s"),
    (900, "15 min"), (5400, "1 h 30 min"), (7200, "2 h"), (3 * 86400 + 4 * 3600, "3 d 4 h")])
def test_durations_read_like_people_say_them(seconds, text):
    assert format_duration(seconds, sep=" ") == text
    assert format_duration(timedelta(seconds=seconds), sep=" ") == text


def test_missing_durations_are_blank():
    assert format_duration(None) == "" and format_duration(float("nan")) == ""


def test_clock_readings_are_short():
    when = datetime(2026, 12, 1, 9, 5, 7, 120_000, tzinfo=timezone.utc)
    assert format_clock(when) == "09:05:07.120"
    assert format_clock(when, with_day=True, sep=" ") == "Dec 01 09:05:07.120"
    assert spans_days([when, when + timedelta(days=1)]) and not spans_days([when, None])


@pytest.mark.parametrize("span, step", [(0.05, 0.01), (3, 0.5), (46, 10), (946, 300),
                                        (4 * 3600, 3600), (3 * 86400, 43200)])
def test_axis_steps_are_round(span, step):
    assert nice_step(span) == step
    ticks = elapsed_ticks(span)
    assert ticks[0] == 0 and len(ticks) <= 8 and ticks[-1] <= span


def test_tick_labels():
    assert [format_elapsed(t) for t in (0, 0.25, 1.5, 900, 7200)] == \
        ["0", "+250 ms", "+1.5 s", "+15 min", "+2 h"]
