"""Duration strings as the SDK sends them ("30s", "1m", "4h", "1d", "1w") and as Go prints
them ("24h0m0s"), plus ISO times; all to milliseconds."""

from __future__ import annotations

import re

from .ids import parse_time_ms

_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000,
            "w": 7 * 86_400_000}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


class DurationError(ValueError):
    pass


def parse_duration_ms(text: str | int | float | None) -> int:
    if text is None:
        raise DurationError("missing duration")
    if isinstance(text, (int, float)):
        return int(text)
    s = str(text).strip()
    if not s:
        raise DurationError("empty duration")
    pos, total = 0, 0.0
    for m in _PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT_MS[m.group(2)]
        pos = m.end()
    if pos != len(s) or pos == 0:
        raise DurationError(f"invalid duration {text!r} (expected e.g. 30s, 5m, 4h, 1d)")
    return int(total)


def duration_or_time_ms(text: str, now_ms: int) -> int:
    """A timeout given as a duration or an RFC 3339 time, as an absolute engine time."""
    try:
        return now_ms + parse_duration_ms(text)
    except DurationError:
        try:
            return parse_time_ms(text)
        except ValueError:
            raise DurationError(f"invalid timeout {text!r}: not a duration or a time") from None


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
