"""The Worker's one notion of "now" (wall clock unless told otherwise).

Every time the system of record stores or compares (draft and audit timestamps, "no
outreach for 7 days", "activity of the last 30 days", the seed's relative dates) comes from
``now()`` here and is passed into SQL as a parameter, never from Postgres ``now()``. That
lets whoever runs the Worker give it another clock without the Worker knowing who it is:

* ``WORKER_CLOCK_URL`` set: ``now()`` asks that URL on every call. It must answer JSON with
  ``now_ms`` (epoch milliseconds) or ``now`` (RFC 3339). The lab points it at its engine's
  ``/lab/v1/clock``, so advancing the virtual clock a week ages every customer a week.
  Read at call time, so a process started before the lab (the MCP server over stdio, a
  notebook kernel) follows it too. An unreachable clock raises ``ClockUnavailable``: the
  Worker never silently mixes two timelines.
* unset: ``datetime.now(timezone.utc)``.

Nothing here imports Inngest or the lab (rule 1 of CLAUDE.md).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import urllib.error
import urllib.request

CLOCK_URL_ENV = "WORKER_CLOCK_URL"
CLOCK_TIMEOUT_S = 5.0


class ClockUnavailable(RuntimeError):
    """``WORKER_CLOCK_URL`` is set but did not answer with a time; nothing was written."""


def now() -> dt.datetime:
    """The current time as an aware UTC datetime."""
    url = os.environ.get(CLOCK_URL_ENV, "").strip()
    if not url:
        return dt.datetime.now(dt.timezone.utc)
    return _remote_now(url)


def _remote_now(url: str) -> dt.datetime:
    try:
        with urllib.request.urlopen(url, timeout=CLOCK_TIMEOUT_S) as resp:  # noqa: S310
            body = json.loads(resp.read().decode("utf-8"))
    except (OSError, ValueError, urllib.error.URLError) as exc:
        raise ClockUnavailable(f"{CLOCK_URL_ENV}={url} did not answer with a time: {exc}. "
                               f"Start that clock's server, or unset {CLOCK_URL_ENV} to use "
                               "the wall clock.") from exc
    if isinstance(body, dict) and isinstance(body.get("data"), dict):
        body = body["data"]
    if isinstance(body, dict) and isinstance(body.get("now_ms"), (int, float)) \
            and not isinstance(body["now_ms"], bool):
        return dt.datetime.fromtimestamp(body["now_ms"] / 1000, dt.timezone.utc)
    if isinstance(body, dict) and isinstance(body.get("now"), str):
        try:
            parsed = dt.datetime.fromisoformat(body["now"].replace("Z", "+00:00"))
        except ValueError as exc:
            raise ClockUnavailable(f"{url} answered an unreadable time {body['now']!r}") from exc
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)
    raise ClockUnavailable(f"{url} answered without 'now_ms' or 'now': {str(body)[:200]}")
