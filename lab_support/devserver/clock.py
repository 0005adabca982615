"""The engine clock.

Real mode: wall time. Virtual mode: wall time plus an offset that only grows, so runs keep
their natural pace (ms between steps) and the engine can jump ahead: ``advance`` on request,
or by itself when idle (the scheduler decides when; see scheduler.py). Every server-side
time (event receive time, run and step timestamps, sleeps, wait timeouts, retry backoff,
throttle/rate-limit windows, debounce/batch windows, cron ticks, function timeouts) reads
this one clock, so a 3-day sleep's timeline shows three days.
"""

from __future__ import annotations

import time


class ClockError(RuntimeError):
    pass


class EngineClock:
    def __init__(self, mode: str = "virtual", offset_ms: int = 0,
                 auto_advance: bool = True) -> None:
        if mode not in ("virtual", "real"):
            raise ClockError(f"unknown clock mode {mode!r} (use 'virtual' or 'real')")
        self.mode = mode
        self.offset_ms = offset_ms if mode == "virtual" else 0
        self.auto_advance = auto_advance and mode == "virtual"
        self.until_ms: int | None = None

    @staticmethod
    def wall_ms() -> int:
        return int(time.time() * 1000)

    def now_ms(self) -> int:
        return self.wall_ms() + self.offset_ms

    def wall_to_engine(self, wall_ms: int) -> int:
        return wall_ms + self.offset_ms

    def advance(self, ms: int) -> None:
        if self.mode != "virtual":
            raise ClockError("the clock is real: time cannot be advanced "
                             "(start the engine with --clock virtual)")
        if ms < 0:
            raise ClockError("the clock only moves forward")
        self.offset_ms += int(ms)

    def advance_to(self, target_ms: int) -> None:
        self.advance(max(0, target_ms - self.now_ms()))
