"""What the engine stores: apps, functions, events, runs (with their steps), queue items,
pauses. Plain dataclasses; the store persists them as JSON documents."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

# Run status strings as REST v1 shows them, and the GraphQL enum for each.
SCHEDULED, RUNNING, COMPLETED, FAILED, CANCELLED, SKIPPED = (
    "Scheduled", "Running", "Completed", "Failed", "Cancelled", "Skipped")
TERMINAL = {COMPLETED, FAILED, CANCELLED, SKIPPED}
GQL_RUN_STATUS = {SCHEDULED: "QUEUED", RUNNING: "RUNNING", COMPLETED: "COMPLETED",
                  FAILED: "FAILED", CANCELLED: "CANCELLED", SKIPPED: "SKIPPED"}


def to_doc(obj) -> dict:
    return dataclasses.asdict(obj)


def from_doc(cls, doc: dict):
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in doc.items() if k in names})


@dataclass
class App:
    name: str
    id: str
    url: str
    sdk: str = ""
    framework: str = ""
    checksum: str = ""
    synced_at: int = 0
    error: str | None = None


@dataclass
class Function:
    slug: str            # "<app>-<fn>" as the SDK registers it
    id: str              # UUID
    app: str
    name: str
    url: str
    config: dict         # the registration object, as sent
    version: int = 1
    created_at: int = 0

    @property
    def triggers(self) -> list[dict]:
        return self.config.get("triggers") or []

    @property
    def max_attempts(self) -> int:
        retries = ((self.config.get("steps") or {}).get("step") or {}).get("retries")
        n = 4 if not retries else int(retries.get("attempts", 4))
        return min(max(n, 0), 20) + 1


@dataclass
class Event:
    internal_id: str
    id: str
    name: str
    data: dict
    ts: int
    received_at: int
    user: dict = field(default_factory=dict)
    v: str | None = None

    def wire(self) -> dict:
        """The event as sent to the SDK and seen by expressions."""
        out = {"data": self.data, "id": self.id, "name": self.name, "ts": self.ts,
               "user": self.user or {}}
        if self.v is not None:
            out["v"] = self.v
        return out


@dataclass
class Step:
    """One step of a run (a trace span): what happened, attempt by attempt."""
    hash: str
    name: str                   # the user step id
    op: str                     # RUN | SLEEP | WAIT_FOR_EVENT | INVOKE | AI_GATEWAY
    status: str = "RUNNING"     # span status enum
    queued_at: int | None = None
    started_at: int | None = None
    ended_at: int | None = None
    attempts: list[dict] = field(default_factory=list)
    output: Any = None          # memo value (wrapped) once known
    has_output: bool = False
    info: dict = field(default_factory=dict)
    memoized: bool = False      # lab extension: value came from a rerun's memo
    planned: int = 0            # StepPlanned answers for this step (bounded: limits.py)


@dataclass
class Run:
    run_id: str
    fn_slug: str
    fn_id: str
    app: str
    event_ids: list[str]        # internal ids of the triggering events
    events: list[dict]          # wire form, as sent to the SDK
    queued_at: int
    status: str = SCHEDULED
    started_at: int | None = None
    ended_at: int | None = None
    output: Any = None
    memo: dict = field(default_factory=dict)
    stack: list[str] = field(default_factory=list)
    steps: dict = field(default_factory=dict)      # hash -> Step doc
    step_order: list[str] = field(default_factory=list)
    force_plan: bool = False
    pending: list[str] = field(default_factory=list)   # parallel branches outstanding
    batch_id: str | None = None
    original_run_id: str | None = None
    cron: str | None = None
    skip_reason: str | None = None
    max_attempts: int = 5
    concurrency_keys: list[list] = field(default_factory=list)  # [[counter key, limit]]
    priority: int = 0
    singleton_key: str | None = None
    correlation_id: str | None = None
    parent_run_id: str | None = None
    request_version: int = -1
    fn_version: int = 1
    ended_reason: str | None = None

    @property
    def event(self) -> dict:
        return self.events[0]


@dataclass
class Item:
    """A unit of queued work. ``call`` items ask the SDK something; the others are timers."""
    id: str
    run_id: str
    kind: str                    # call | sleep | wait_timeout | invoke_timeout | start_timeout
                                 # | finish_timeout | debounce | batch | cron
    at: int                      # engine ms
    attempt: int = 0
    target: str | None = None    # hashed step id for a targeted call
    target_name: str | None = None
    internal: bool = True        # may auto-advance jump to it?
    seq: int = 0
    payload: dict = field(default_factory=dict)
    unreachable: int = 0         # consecutive host-unreachable failures (not attempts)
    started_ms: int | None = None  # engine ms the call took its slots: one reading for the
                                   # stats series and the trace, so they never disagree


@dataclass
class Pause:
    """A run waiting on an event: wait_for_event, invoke result, or cancel-on."""
    id: str
    run_id: str
    kind: str                    # wait | invoke | cancel
    event: str                   # event name to match
    expression: str | None
    expires_at: int
    step_hash: str | None = None
    created_at: int = 0
    correlation_id: str | None = None
