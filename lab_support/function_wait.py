"""``lab.wait(function)``: wait until a function has no run queued or running.

Waiting on a list of event ids looks each one up, and then each run, on every poll: right
for a handful, slow for a burst of 1,000 (thousands of requests per poll). For a burst the
question is simpler, "has the queue drained?", and one query answers it: the function's runs
with status Queued or Running (GraphQL, so both engines answer it the same way). When that
list is empty, the statuses of all the function's runs are counted once and returned.

Runs are created when the engine accepts the events (the embedded engine) or a few hundred
milliseconds later (a real dev server), so the wait also requires ``at_least`` runs to exist
(default 1) before an empty queue counts as drained.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from .waiting import Progress, RunWaitTimeout

if TYPE_CHECKING:
    from .lab_object import Lab

POLL_S = 0.2
OPEN = ["QUEUED", "RUNNING"]
COUNT_LIMIT = 100_000


class RunCounts(Counter):
    """Runs of one function per status (``COMPLETED``, ``FAILED`` …), printed as one line."""

    def __repr__(self) -> str:
        parts = ", ".join(f"{n} {s.lower()}" for s, n in sorted(self.items()))
        return f"{sum(self.values())} run(s): {parts or 'none'}"


def wait_for_function(lab: "Lab", function: Any, timeout: float, at_least: int = 1) -> RunCounts:
    api = lab._require_engine()
    slug = lab._slug(function)
    fn_ids = [api.function_id(slug)]
    deadline = time.monotonic() + timeout
    progress = Progress()
    while True:
        still_open = api.runs(function_ids=fn_ids, status=OPEN, limit=100)
        if not still_open:
            counts = RunCounts(r["status"] for r in api.runs(function_ids=fn_ids,
                                                             limit=COUNT_LIMIT))
            if sum(counts.values()) >= at_least:
                progress.update(f"{slug}: {counts!r}", final=True)
                return counts
        shown = f"{len(still_open)}{'+' if len(still_open) == 100 else ''}"
        summary = f"{slug}: {shown} run(s) queued or running"
        progress.update(summary)
        if time.monotonic() >= deadline:
            raise RunWaitTimeout(
                f"Timed out after {timeout:.0f} s — {summary}. Runs that sleep or wait for an "
                "event on the virtual clock need lab.clock.advance(...); lab.runs(function=..., "
                "status='Running') lists them.")
        time.sleep(POLL_S)
