"""``lab.wait(function)``: wait until a function has no run queued or running.

Waiting on a list of event ids looks each one up, and then each run, on every poll: right
for a handful, slow for a burst of 1,000 (thousands of requests per poll). For a burst the
question is simpler, "has the queue drained?", and one query answers it: the function's runs
with status Queued or Running (GraphQL, so both engines answer it the same way), asking for
one id only: the engine that runs the burst also answers the polls, so they must stay cheap.
When none is left, the statuses of all the function's runs are counted once (ids and
statuses only) and returned.

Runs are created when the engine accepts the events (the embedded engine) or a few hundred
milliseconds later (a real dev server), so the wait also requires ``at_least`` runs to exist
(default 1) before an empty queue counts as drained.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from .client import EPOCH
from .waiting import Progress, RunWaitTimeout

if TYPE_CHECKING:
    from .lab_object import Lab

POLL_S = 0.3
OPEN = ["QUEUED", "RUNNING"]
PAGE = 100
QUERY = """query($first:Int!,$after:String,$filter:RunsFilterV2!) {
  runs(first:$first, after:$after, filter:$filter, orderBy:[{field:QUEUED_AT, direction:DESC}]) {
    edges { node { id status } } pageInfo { hasNextPage endCursor } } }"""


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
        if not _page(api, fn_ids, OPEN, 1, None)["edges"]:
            counts = _count(api, fn_ids)
            if sum(counts.values()) >= at_least:
                progress.update(f"{slug}: {counts!r}", final=True)
                return counts
        summary = f"{slug}: runs still queued or running"
        progress.update(summary)
        if time.monotonic() >= deadline:
            raise RunWaitTimeout(
                f"Timed out after {timeout:.0f} s — {summary}. Runs that sleep or wait for an "
                "event on the virtual clock need lab.clock.advance(...); lab.runs(function=..., "
                "status='Running') lists them.")
        time.sleep(POLL_S)


def _page(api, fn_ids: list[str], status: list[str] | None, first: int, after: str | None):
    flt = {"from": EPOCH, "functionIDs": fn_ids, **({"status": status} if status else {})}
    return api.gql(QUERY, {"first": first, "after": after, "filter": flt})["runs"]


def _count(api, fn_ids: list[str]) -> RunCounts:
    counts, after = RunCounts(), None
    while True:
        page = _page(api, fn_ids, None, PAGE, after)
        counts.update(edge["node"]["status"] for edge in page["edges"])
        if not page["pageInfo"]["hasNextPage"] or not page["edges"]:
            return counts
        after = page["pageInfo"]["endCursor"]
