"""The engine clock.

Real mode: wall time. Virtual mode: wall time plus an offset that only grows, so runs keep
their natural pace (ms between steps) and the engine can jump ahead: ``advance`` on request,
or by itself when idle (the scheduler decides when; see scheduler.py). Every server-side
time (event receive time, run and step timestamps, sleeps, wait timeouts, retry backoff,
throttle/rate-limit windows, debounce/batch windows, cron ticks, function timeouts) reads
this one clock, so a 3-day sleep's timeline shows three days.

A request never moves the clock past ``CLOCK_MAX_MS`` (2100-01-01), and the engine's own
jumps to a timer never past ``CLOCK_HARD_MAX_MS`` (year 9000), so every time the engine shows
or schedules stays a date Python, RFC 3339 and ULIDs can write. An advance past the bound,
or by something that is not a finite, non-negative number of ms, is refused and leaves the
clock as it was; a stored offset past the hard bound is ignored when the engine starts.
"""

from __future__ import annotations

import math
import time

from .limits import CLOCK_HARD_MAX_MS, CLOCK_MAX_MS


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

    def advance(self, ms: int | float, *, limit_ms: int = CLOCK_MAX_MS) -> None:
        if self.mode != "virtual":
            raise ClockError("the clock is real: time cannot be advanced "
                             "(start the engine with --clock virtual)")
        if isinstance(ms, bool) or not isinstance(ms, (int, float)) or not math.isfinite(ms):
            raise ClockError(f"advance by a finite number of milliseconds, not {ms!r}")
        if ms < 0:
            raise ClockError("the clock only moves forward")
        ms = int(ms)
        if self.now_ms() + ms > limit_ms:
            raise ClockError(f"the clock cannot pass {_iso(limit_ms)}: advancing by {ms} ms "
                             f"from {_iso(self.now_ms())} would")
        self.offset_ms += ms

    def advance_to(self, target_ms: int, *, limit_ms: int = CLOCK_HARD_MAX_MS) -> None:
        self.advance(max(0, target_ms - self.now_ms()), limit_ms=limit_ms)

    def restore_offset(self, offset) -> bool:
        """Take a stored offset if it is a sane one (virtual mode only); False if ignored."""
        if self.mode != "virtual":
            return True
        if (isinstance(offset, bool) or not isinstance(offset, int) or offset < 0
                or self.wall_ms() + offset > CLOCK_HARD_MAX_MS):
            return False
        self.offset_ms = max(self.offset_ms, offset)
        return True


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))
