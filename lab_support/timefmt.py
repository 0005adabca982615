"""Short, readable times and durations for tables, captions and plot axes.

Engine times are shown as a clock reading (``09:00:00.120``), with the day only when a view
spans more than one day; durations as ``850 ms``, ``1.5 s``, ``15 min``, ``1 h 30 min``.
Non-breaking spaces keep a value on one line in an HTML table.
"""

from __future__ import annotations

from datetime import datetime, timedelta

NBSP = "\u00a0"
# Tick steps a reader can add up in their head, in seconds.
NICE_STEPS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30,
              60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
              2 * 86400, 7 * 86400, 14 * 86400, 30 * 86400)


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def format_duration(value: float | timedelta | None, *, sep: str = NBSP) -> str:
    """``850 ms``, ``1.5 s``, ``15 min``, ``2 min 30 s``, ``1 h 30 min``, ``3 d 4 h``."""
    if value is None:
        return ""
    try:
        seconds = _seconds(value)
    except (TypeError, ValueError):
        return ""
    if seconds != seconds:  # NaN (pandas' missing value)
        return ""
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    if seconds < 1:
        return f"{sign}{seconds * 1000:.0f}{sep}ms"
    if seconds < 60:
        return f"{sign}{seconds:.3g}{sep}s"
    units = ((86400, "d"), (3600, "h"), (60, "min"), (1, "s"))
    for n, (size, name) in enumerate(units[:-1]):
        if seconds >= size:
            big, rest = divmod(round(seconds), size)
            small_size, small_name = units[n + 1]
            small = rest // small_size
            text = f"{sign}{big}{sep}{name}"
            return text + (f" {small}{sep}{small_name}" if small else "")
    return f"{sign}{seconds:.0f}{sep}s"  # unreachable: < 60 s returned above


def spans_days(times: list[datetime | None]) -> bool:
    days = {t.date() for t in times if t is not None and t == t}
    return len(days) > 1


def format_clock(when: datetime | None, *, with_day: bool = False, sep: str = NBSP) -> str:
    """``09:00:00.120`` (engine time, UTC); ``Dec 02 09:00:00.120`` when ``with_day``."""
    if when is None or when != when:  # None or NaT
        return ""
    text = when.strftime("%H:%M:%S") + f".{when.microsecond // 1000:03d}"
    return sep.join([when.strftime("%b"), when.strftime("%d"), text]) if with_day else text


def nice_step(span_s: float, max_ticks: int = 7) -> float:
    """The smallest step from NICE_STEPS that puts at most ``max_ticks`` ticks on the span."""
    for step in NICE_STEPS:
        if span_s / step <= max_ticks:
            return step
    return NICE_STEPS[-1] * max(1, round(span_s / NICE_STEPS[-1] / max_ticks))


def elapsed_ticks(span_s: float, max_ticks: int = 7) -> list[float]:
    """Tick positions (seconds from the start) at a nice step covering ``0..span_s``."""
    span_s = max(span_s, 0.001)
    step = nice_step(span_s, max_ticks)
    count = int(span_s / step + 1e-9)
    return [round(i * step, 6) for i in range(count + 1)]


def format_elapsed(seconds: float) -> str:
    """An axis tick: ``0``, ``+250 ms``, ``+1.5 s``, ``+15 min``, ``+2 h``."""
    if abs(seconds) < 1e-9:
        return "0"
    return "+" + format_duration(seconds, sep=" ")
