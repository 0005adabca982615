"""Plan limits (lab only): make the embedded engine behave like an Inngest Cloud plan.

``POST /lab/v1/tier {"tier": "hobby" | "pro" | null}`` (``lab.start(..., tier=...)``) picks a
plan; ``null`` means no plan limits (the dev server's own). The numbers are Inngest's
documented plan limits (sources in docs/plan-limits.md; the course's "Hobby" is the docs'
"Free" plan):

| limit                        | hobby     | pro        | how the engine applies it                    |
|------------------------------|-----------|------------|----------------------------------------------|
| concurrent steps (account)   | 5         | 100        | one more concurrency counter on every call   |
| sleep (step.sleep/sleep_until)| 7 days   | 1 year     | a longer sleep fails the run                 |
| event batch size             | 5 events  | 100 events | a bigger ``batch_events.max_size`` fails sync |
| event batch timeout          | 30 s      | 5 min      | a longer timeout fails sync                  |
| trace and run history        | 24 h      | 7 days     | finished runs older than that are forgotten  |

The tier applies from the next sync and the next SDK call; functions synced before stay.
Error texts follow the platform's own: the sync error code and message for a batch that is
too big (``batch_size_too_large``: "Configured batch size is too large"), and the server's
sleep-limit message shape with the plan's limit.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from .durations import DurationError, parse_duration_ms
from .models import TERMINAL

DAY_MS = 86_400_000
ACCOUNT_COUNTER = "plan:account"
META_KEY = "lab_tier"


class TierError(ValueError):
    pass


@dataclass(frozen=True)
class Plan:
    tier: str                   # the lab's name: hobby | pro
    name: str                   # the plan's name in Inngest's pricing
    concurrent_steps: int
    max_sleep_ms: int
    sleep_words: str
    batch_max_size: int
    batch_max_timeout_ms: int
    history_ms: int

    def view(self) -> dict:
        return asdict(self)


PLANS = {
    "hobby": Plan("hobby", "Hobby (Free)", concurrent_steps=5, max_sleep_ms=7 * DAY_MS,
                  sleep_words="seven days", batch_max_size=5, batch_max_timeout_ms=30_000,
                  history_ms=DAY_MS),
    # Pro's year is the server's own limit (366 days), so only Hobby adds a sleep check.
    "pro": Plan("pro", "Pro", concurrent_steps=100, max_sleep_ms=366 * DAY_MS,
                sleep_words="one year", batch_max_size=100, batch_max_timeout_ms=300_000,
                history_ms=7 * DAY_MS),
}


def plan_named(name: str | None) -> Plan | None:
    if name is None or name == "" or str(name).lower() == "none":
        return None
    plan = PLANS.get(str(name).lower())
    if plan is None:
        raise TierError(f"unknown tier {name!r}; use one of {', '.join(PLANS)} or null "
                        "(no plan limits)")
    return plan


# -- the checks the engine calls ---------------------------------------------------------------
def account_counter(plan: Plan | None) -> list | None:
    """The plan's account-wide concurrent-steps limit, as one more concurrency counter."""
    return [ACCOUNT_COUNTER, plan.concurrent_steps] if plan else None


def sleep_problem(plan: Plan | None, duration_ms: int, raw: str | None) -> tuple[str, str] | None:
    """(error name, message) when a sleep is longer than the plan allows."""
    if plan is None or duration_ms <= plan.max_sleep_ms:
        return None
    return ("InngestErrTimeoutTooLong",
            f"The sleep {json.dumps(raw or '')} ends more than {plan.sleep_words} in the future; "
            f"sleeps may last at most {plan.sleep_words} on the {plan.name} plan.")


def sync_problems(plan: Plan | None, functions: list[dict]) -> list[str]:
    """What a sync breaks of the plan's limits (one message per function and limit)."""
    if plan is None:
        return []
    problems = []
    for fn in functions:
        batch = fn.get("batchEvents") or {}
        slug = fn.get("id") or "?"
        size = int(batch.get("maxSize") or 0)
        if size > plan.batch_max_size:
            problems.append(f"{slug}: batch_size_too_large: Configured batch size is too large "
                            f"(max_size={size}; the {plan.name} plan allows at most "
                            f"{plan.batch_max_size} events per batch)")
        try:
            timeout = parse_duration_ms(batch["timeout"]) if batch.get("timeout") else 0
        except DurationError:
            timeout = 0                         # the engine's own validation reports it
        if timeout > plan.batch_max_timeout_ms:
            problems.append(f"{slug}: batch_timeout_invalid: batch timeout {batch['timeout']} "
                            f"is longer than the {plan.name} plan allows "
                            f"({plan.batch_max_timeout_ms // 1000}s)")
    return problems


def purge_history(engine) -> int:
    """Forget finished runs (and events no kept run needs) older than the plan's history."""
    plan = engine.tier
    if plan is None:
        return 0
    store = engine.store
    horizon = engine.now() - plan.history_ms
    old = [r for r in store.runs.values()
           if r.status in TERMINAL and (r.ended_at or r.queued_at) < horizon]
    for run in old:
        store.delete("run", run.run_id)
        for eid in run.event_ids:
            kept = [rid for rid in store.runs_by_event.get(eid, []) if rid != run.run_id]
            if kept:
                store.runs_by_event[eid] = kept
            else:
                store.runs_by_event.pop(eid, None)
    if old:
        needed = {eid for r in store.runs.values() for eid in r.event_ids}
        for event in [e for e in store.events.values()
                      if e.received_at < horizon and e.internal_id not in needed]:
            store.delete("event", event.internal_id)
    return len(old)
