"""The function host's own record of the SDK calls it answered: when each began and ended.

Inngest's concurrency limits cap SDK calls in flight (executing steps), and every such call
is an HTTP request from the server to the app. The host sees each one from the moment its
request arrives until its answer is sent, a span that lies inside the time the server holds
the call's slot. So the most calls the host saw open at once can never be more than the
server let run at once: an exact lower bound, and on a busy burst the peak itself.

The embedded engine records its calls on its own clock (``lab.stats`` reads that). A real
``inngest dev`` exposes no such record and its traces leave attempt spans open, so on a real
server the lab turns this log on (``PUT /lab/faults/settings {"record_calls": true}``) and
``lab.stats`` reads it at ``GET /lab/faults/calls``. Each call keeps the event that triggered
its run, so peaks per key (``event.data.customer_id``) come out the same way.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import deque

CALLS_KEPT = 100_000   # the newest calls; a 1,000-email burst makes about 3,000


class CallLog:
    def __init__(self, kept: int = CALLS_KEPT) -> None:
        self.enabled = False
        self._done: deque = deque(maxlen=kept)   # [function, start, end, event]
        self._open: dict[int, list] = {}
        self._ids = itertools.count()
        self._lock = threading.Lock()

    def begin(self, function: str, body: bytes) -> int:
        call = [function, time.time(), None, _trigger_event(body)]
        with self._lock:
            number = next(self._ids)
            self._open[number] = call
        return number

    def end(self, number: int) -> None:
        with self._lock:
            call = self._open.pop(number, None)
            if call is not None:
                call[2] = time.time()
                self._done.append(call)

    def calls(self, function: str | None = None) -> list[list]:
        """Finished calls, then the open ones (end None), of ``function`` or of all."""
        with self._lock:
            rows = [list(c) for c in itertools.chain(self._done, self._open.values())]
        return [c for c in rows if function is None or fn_matches(function, c[0])]

    def clear(self) -> None:
        with self._lock:
            self._done.clear()


def fn_matches(wanted: str, slug: str) -> bool:
    """``wanted`` is the function's full slug (``app-fn``) or its id within the app."""
    return slug == wanted or slug.endswith("-" + wanted)


def _trigger_event(body: bytes) -> dict:
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        return {}
    if not isinstance(payload, dict):
        return {}
    event = payload.get("event")
    if not isinstance(event, dict):  # a batch: its first event, as ctx.event is
        events = payload.get("events")
        event = events[0] if isinstance(events, list) and events else {}
    return event if isinstance(event, dict) else {}
