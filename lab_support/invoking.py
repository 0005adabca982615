"""``lab.invoke(function, data)``: run a function by hand and get its run id.

Both engines serve GraphQL ``invokeFunction``, which sends an ``inngest/function.invoked``
event aimed at one function (with ``data``; a cron function invoked this way gets no
``scheduledAt``). The mutation answers only ``true``, so the run id is found afterwards: the
function's newest run started by an invoke that was not there before. The embedded engine
creates the run before it answers; a real dev server within a moment (we wait, bounded).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from .client import LabClientError

if TYPE_CHECKING:
    from .lab_object import Lab

INVOKED = "inngest/function.invoked"
LOOKUP_S = 15.0


def invoke(lab: "Lab", function: Any, data: dict | None) -> str:
    if data is not None and not isinstance(data, dict):
        raise ValueError(f"data must be a dict (the event's data), not {type(data).__name__}")
    api = lab._require_engine()
    slug = lab._slug(function)
    fn_id = api.function_id(slug)           # a clear error when it is not synced
    # A real server queues the run at wall time, even after lab.clock.advance moved the lab's
    # schedule cursor ahead of it.
    now = lab.clock.now() if api.kind == "embedded" else datetime.now(timezone.utc)
    since = now - timedelta(seconds=5)

    # A real dev server's GraphQL runs carry no eventName for an invoke of a cron function
    # (seen on 253303cd): there a new run with none counts too. Only a cron tick that fires in
    # the same few seconds could be taken for it; the run is still that function's.
    names = {INVOKED} if api.kind == "embedded" else {INVOKED, None}

    def invoked_runs() -> list[dict]:
        return [r for r in api.runs(function_ids=[fn_id], since=since)
                if r.get("eventName") in names]

    before = {r["id"] for r in invoked_runs()}
    if not api.invoke(slug, data):
        raise LabClientError(f"the engine did not accept the invoke of {slug}")
    deadline = time.monotonic() + LOOKUP_S
    while True:
        new = [r["id"] for r in invoked_runs() if r["id"] not in before]
        if new:
            return new[-1]                  # runs come newest first: the first one after ours
        if time.monotonic() >= deadline:
            raise LabClientError(f"{slug} was invoked, but no run of it appeared within "
                                 f"{LOOKUP_S:.0f} s; look at lab.runs(function={slug!r})")
        time.sleep(0.05)
