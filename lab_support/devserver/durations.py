"""Duration strings as the SDK sends them ("30s", "1m", "4h", "1d", "1w") and as Go prints
them ("24h0m0s"), plus ISO times; all to milliseconds.

Every duration is a finite, non-negative number of ms no longer than ``MAX_DURATION_MS``
(10 years); a timeout (sleep, wait, invoke) is at most ``MAX_WAIT_MS`` (366 days, the real
server's bound) ahead. Anything else raises ``DurationError`` with the reason, so a caller
answers 400 or fails the run instead of scheduling a time no clock can show.
"""

from __future__ import annotations

import math
import re

from .ids import parse_time_ms
from .limits import MAX_DURATION_MS, MAX_WAIT_MS

_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000,
            "w": 7 * 86_400_000}
_PART = re.compile(r"(\d{1,15}(?:\.\d{1,9})?)(ms|s|m|h|d|w)")
_MAX_TEXT = 64


class DurationError(ValueError):
    pass


def parse_duration_ms(text: str | int | float | None) -> int:
    if text is None:
        raise DurationError("missing duration")
    if isinstance(text, bool):
        raise DurationError(f"invalid duration {text!r} (expected e.g. 30s, 5m, 4h, 1d)")
    if isinstance(text, (int, float)):
        return _bounded(text, text)
    s = str(text).strip()
    if not s:
        raise DurationError("empty duration")
    if len(s) > _MAX_TEXT:
        raise DurationError(f"invalid duration {s[:_MAX_TEXT]!r}...: too long")
    pos, total = 0, 0.0
    for m in _PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT_MS[m.group(2)]
        pos = m.end()
    if pos != len(s) or pos == 0:
        raise DurationError(f"invalid duration {text!r} (expected e.g. 30s, 5m, 4h, 1d)")
    return _bounded(total, text)


def _bounded(ms: int | float, shown) -> int:
    if not math.isfinite(ms) or ms < 0:
        raise DurationError(f"invalid duration {shown!r}: must be a finite, non-negative time")
    if ms > MAX_DURATION_MS:
        raise DurationError(f"duration {shown!r} is longer than the limit of "
                            f"{MAX_DURATION_MS // 86_400_000} days")
    return int(ms)


def duration_or_time_ms(text: str, now_ms: int, max_ms: int = MAX_WAIT_MS) -> int:
    """A timeout given as a duration or an RFC 3339 time, as an absolute engine time at most
    ``max_ms`` after ``now_ms``."""
    try:
        at = now_ms + parse_duration_ms(text)
    except DurationError as exc:
        try:
            at = parse_time_ms(text)
        except (ValueError, OverflowError):
            raise DurationError(f"invalid timeout {text!r}: {exc}") from None
    if at - now_ms > max_ms:
        raise DurationError(f"timeout {text!r} is more than {max_ms // 86_400_000} days ahead")
    return at


def go_duration(ms: int) -> str:
    """Go's time.Duration text, e.g. 86400000 -> '24h0m0s' (how the server stores periods)."""
    secs, rem_ms = divmod(int(ms), 1000)
    h, secs = divmod(secs, 3600)
    m, s = divmod(secs, 60)
    frac = f".{rem_ms:03d}".rstrip("0") if rem_ms else ""
    if h:
        return f"{h}h{m}m{s}{frac}s"
    if m:
        return f"{m}m{s}{frac}s"
    return f"{s}{frac}s"
