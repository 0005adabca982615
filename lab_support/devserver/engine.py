"""The engine: events become runs, runs wait and resume, runs finish.

* ``publish`` stores an event, lets it resume or cancel waiting runs (pauses), and starts a
  run of every function whose trigger matches it (fan-out).
* ``create_run`` applies the schedule-time flow control (dedup, rate limit / idempotency,
  singleton, throttle, priority, concurrency keys) and queues the first SDK call.
* ``finish`` ends a run and publishes the lifecycle events (``inngest/function.finished``,
  ``.failed``, ``.cancelled``) that ``on_failure`` handlers and invokers listen to.
* ``rerun`` is GraphQL's rerun: same events, and with ``from_step`` the earlier steps of the
  original come back as memo and are not executed again. Cron-triggered runs cannot be rerun
  (as Inngest documents); ``replay`` is bulk Replay: every run of a function in a window with
  the given statuses (and error text) runs again from the start.
* ``tier`` (lab only) holds the plan whose limits apply (tiers.py); ``step_stats`` records
  executing steps over time (stats.py).
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp

from . import expressions, tiers
from .chaos import Chaos
from .clock import EngineClock
from .cron import CronTicker
from .durations import DurationError, parse_duration_ms
from .executor import Executor
from .flow import DAY_MS, Buffers, Flow
from .ids import new_ulid, step_hash
from .models import (CANCELLED, COMPLETED, FAILED, RUNNING, SCHEDULED, SKIPPED, TERMINAL,
                     Event, Function, Item, Pause, Run, Step)
from .scheduler import Scheduler
from .stats import StepStats
from .store import Store

log = logging.getLogger("lab_support.devserver")
YEAR_MS = 365 * DAY_MS
LIFECYCLE = ("inngest/function.finished", "inngest/function.failed")
INVOKED = "inngest/function.invoked"
CRON_RERUN = ("run {run} was started by its cron schedule, and cron-triggered runs cannot be "
              "rerun (as on Inngest); invoke the function instead (lab.invoke, or Invoke in the "
              "dashboard), or let the next tick run")


class EngineError(ValueError):
    """A request the engine cannot honour; the message is for the caller."""


class Engine:
    def __init__(self, store: Store, clock: EngineClock, *, signing_key: str | None = None,
                 retry_interval_s: float | None = None, sdk_timeout_s: float = 300.0,
                 max_workers: int = 100) -> None:
        self.store = store
        self.clock = clock
        self.signing_key = signing_key
        # With a signing key the engine behaves like a self-hosted server (`inngest start`):
        # the SDK must be in production ("cloud") mode, and every request is signed.
        self.server_kind = "cloud" if signing_key else "dev"
        self.retry_interval_s = retry_interval_s
        self.sdk_timeout_s = sdk_timeout_s
        self.step_stats = StepStats(self)
        self.tier: tiers.Plan | None = None
        self.scheduler = Scheduler(self, max_workers)
        self.flow = Flow(self)
        self.buffers = Buffers(self)
        self.executor = Executor(self)
        self.chaos = Chaos()
        self.cron = CronTicker(self)
        self.http: aiohttp.ClientSession | None = None
        self.singletons: dict[str, str] = {}

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        offset = self.store.meta.get("clock_offset_ms")
        if offset is not None and not self.clock.restore_offset(offset):
            log.warning("ignored the stored clock offset %r: not a time the clock can reach",
                        offset)
        self.tier = tiers.plan_named(self.store.meta.get(tiers.META_KEY))
        # aiohttp: its connection pool stays cheap with a hundred requests in flight.
        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.scheduler.max_workers + 20),
            auto_decompress=False)
        for run in self.store.runs.values():
            if run.singleton_key and run.status not in TERMINAL:
                self.singletons[run.singleton_key] = run.run_id
        self.scheduler.load()
        self.cron.schedule_all()
        await self.scheduler.start()

    async def stop(self) -> None:
        await self.scheduler.stop()
        if self.http is not None:
            await self.http.close()
        self.store.close()

    def clock_moved(self) -> None:
        if self.clock.mode == "virtual":
            self.store.set_meta("clock_offset_ms", self.clock.offset_ms)
        tiers.purge_history(self)

    def set_tier(self, name: str | None) -> tiers.Plan | None:
        """Apply a plan's limits from the next sync and SDK call (None: no plan limits)."""
        self.tier = tiers.plan_named(name)
        self.store.set_meta(tiers.META_KEY, self.tier.tier if self.tier else None)
        tiers.purge_history(self)
        self.scheduler.requeue_blocked()      # calls held back by the old plan's step limit
        return self.tier

    def now(self) -> int:
        return self.clock.now_ms()

    def timer(self, kind: str, run_id: str, at: int, *, internal: bool = True,
              payload: dict | None = None) -> Item:
        item = Item(id=f"{kind}-{new_ulid()}", run_id=run_id, kind=kind, at=at,
                    internal=internal, payload=payload or {})
        return self.scheduler.add(item)

    def enqueue_call(self, run: Run, *, at: int | None = None, target: str | None = None,
                     target_name: str | None = None, after_sleep: bool = False) -> Item:
        """Queue the next SDK call of ``run``. A negative priority factor delays every start
        and step call by that many seconds (Inngest's docs; a real server moves each start or
        edge item's time by the factor); the call that wakes a sleep is not moved, so a sleep
        ends on time. A positive factor only ranks (``priority_key``)."""
        at = self.now() if at is None else at
        if run.priority < 0 and not after_sleep:
            at -= run.priority * 1000
        item = Item(id=f"call-{new_ulid()}", run_id=run.run_id, kind="call", at=at,
                    target=target, target_name=target_name)
        return self.scheduler.add(item)

    # -- events ----------------------------------------------------------------------------
    def accept(self, raw: list[dict], *, internal_ids: list[str | None] | None = None) -> list[str]:
        """Store already-validated client events and react to each; returns internal ids."""
        ids = []
        for n, doc in enumerate(raw):
            iid = (internal_ids[n] if internal_ids else None) or new_ulid(self.now())
            now = self.now()
            data = dict(doc.get("data") or {})
            data.pop("_inngest", None)
            event = Event(internal_id=iid, id=str(doc.get("id") or iid), name=doc["name"],
                          data=data, ts=int(doc.get("ts") or now), received_at=now,
                          user=doc.get("user") or {}, v=doc.get("v"))
            self.publish(event)
            ids.append(iid)
        return ids

    def record_event(self, name: str, data: dict, *, event_id: str | None = None,
                     user: dict | None = None, v: str | None = None) -> Event:
        """Store an engine-made event without reacting to it (the caller starts the run:
        invokes and cron ticks target one function directly)."""
        now = self.now()
        iid = new_ulid(now)
        event = Event(internal_id=iid, id=event_id or iid, name=name, data=data, ts=now,
                      received_at=now, user=user or {}, v=v)
        self.store.put("event", iid, event)
        return event

    def emit(self, name: str, data: dict, *, event_id: str | None = None) -> Event:
        """Publish an engine-made (internal) event."""
        event = self.record_event(name, data, event_id=event_id)
        self.publish(event)
        return event

    def first_in_a_day(self, fn: Function, event: Event) -> bool:
        """Claim ``event.id`` for ``fn``: False if it already started a run in the last 24 h."""
        now = self.now()
        key = f"dedup:{fn.id}:{event.id}"
        if self.store.meta.get(key, 0) > now:
            return False
        self.store.set_meta(key, now + DAY_MS)
        return True

    def publish(self, event: Event) -> None:
        self.store.put("event", event.internal_id, event)
        self.resume_pauses(event)
        for fn in list(self.store.functions.values()):
            if self.triggered_by(fn, event):
                self.on_trigger(fn, event)

    def triggered_by(self, fn: Function, event: Event) -> bool:
        for trigger in fn.triggers:
            name = trigger.get("event")
            if not name or not _name_matches(name, event.name):
                continue
            expr = trigger.get("expression")
            if not expr:
                return True
            try:
                if expressions.truthy(expr, event.wire()):
                    return True
            except expressions.ExpressionError as exc:
                log.warning("trigger of %s skipped: %s", fn.slug, exc)
        return False

    def on_trigger(self, fn: Function, event: Event) -> Run | None:
        if not self.first_in_a_day(fn, event):
            return None                        # same event id within 24 h: no second run
        now = self.now()
        config = fn.config
        try:
            if config.get("debounce"):
                self.buffers.debounce(fn, event, now)
                return None
            batch = config.get("batchEvents")
            if batch and int(batch.get("maxSize") or 0) >= 2 and batch.get("timeout"):
                if not batch.get("if") or expressions.truthy(batch["if"], event.wire()):
                    ready = self.buffers.batch(fn, event, now)
                    if ready is None:
                        return None
                    return self.create_run(fn, [self.store.events[i] for i in ready],
                                           batch_id=new_ulid(now))
        except expressions.ExpressionError as exc:
            return self.skipped_run(fn, [event], f"flow-control expression failed: {exc}",
                                    status=FAILED)
        return self.create_run(fn, [event])

    # -- runs ------------------------------------------------------------------------------
    def create_run(self, fn: Function, events: list[Event], *, cron: str | None = None,
                   batch_id: str | None = None, original_run_id: str | None = None,
                   bypass_limits: bool = False, correlation_id: str | None = None,
                   parent_run_id: str | None = None) -> Run:
        now = self.now()
        first = events[0].wire()
        try:
            if not bypass_limits:
                reason = self.flow.rate_limited(fn, first, now)
                if reason:
                    return self.skipped_run(fn, events, reason)
            singleton = self.flow.singleton_key(fn, first)
            if singleton and self.singletons.get(singleton):
                holder = self.store.runs.get(self.singletons[singleton])
                if holder and holder.status not in TERMINAL:
                    if fn.config["singleton"].get("mode", "skip") == "skip":
                        return self.skipped_run(fn, events,
                                                f"singleton: run {holder.run_id} is running")
                    self.cancel(holder.run_id, "singleton: replaced by a newer run")
            counters = self.flow.concurrency_counters(fn, first)
            priority = self.flow.priority_factor(fn, first)
            start_at = self.flow.throttle_start(fn, first, now)
        except (expressions.ExpressionError, DurationError) as exc:
            return self.skipped_run(fn, events, f"flow-control configuration failed: {exc}",
                                    status=FAILED)
        run = Run(run_id=new_ulid(now), fn_slug=fn.slug, fn_id=fn.id, app=fn.app,
                  event_ids=[e.internal_id for e in events], events=[e.wire() for e in events],
                  queued_at=now, batch_id=batch_id, original_run_id=original_run_id,
                  cron=cron, max_attempts=fn.max_attempts, concurrency_keys=counters,
                  priority=priority, singleton_key=singleton, correlation_id=correlation_id,
                  parent_run_id=parent_run_id, fn_version=fn.version)
        self.store.add_run(run)
        if singleton:
            self.singletons[singleton] = run.run_id
        if events[0].ts > now and not cron:
            start_at = max(start_at, events[0].ts)   # an event from the future waits for its ts
        self.enqueue_call(run, at=start_at)
        timeouts = fn.config.get("timeouts") or {}
        if timeouts.get("start"):
            self.timer("start_timeout", run.run_id, now + parse_duration_ms(timeouts["start"]))
        if not batch_id:
            for spec in fn.config.get("cancel") or []:
                expires = now + (parse_duration_ms(spec["timeout"]) if spec.get("timeout")
                                 else YEAR_MS)
                self.add_pause(Pause(id=f"pause-{new_ulid()}", run_id=run.run_id,
                                     kind="cancel", event=spec["event"],
                                     expression=spec.get("if"), expires_at=expires,
                                     created_at=now))
        return run

    def skipped_run(self, fn: Function, events: list[Event], reason: str, *,
                    status: str = SKIPPED) -> Run:
        now = self.now()
        run = Run(run_id=new_ulid(now), fn_slug=fn.slug, fn_id=fn.id, app=fn.app,
                  event_ids=[e.internal_id for e in events], events=[e.wire() for e in events],
                  queued_at=now, status=status, ended_at=now, skip_reason=reason,
                  ended_reason=reason, fn_version=fn.version,
                  output={"message": reason} if status == FAILED else None)
        self.store.add_run(run)
        return run

    def mark_started(self, run: Run) -> None:
        if run.status != SCHEDULED:
            return
        run.status, run.started_at = RUNNING, self.now()
        fn = self.store.functions.get(run.fn_slug)
        finish = ((fn.config.get("timeouts") or {}).get("finish")) if fn else None
        if finish:
            self.timer("finish_timeout", run.run_id, run.started_at + parse_duration_ms(finish))

    def finish(self, run: Run, status: str, output: Any = None, *, reason: str | None = None,
               error: dict | None = None) -> None:
        if run.status in TERMINAL:
            return
        run.status, run.ended_at, run.output = status, self.now(), output
        run.ended_reason = reason
        self.store.touch("run", run.run_id)
        self.scheduler.remove_run_items(run.run_id)
        for pause in [p for p in self.store.pauses.values() if p.run_id == run.run_id]:
            self.store.delete("pause", pause.id)
        if run.singleton_key and self.singletons.get(run.singleton_key) == run.run_id:
            del self.singletons[run.singleton_key]
        if run.events and run.events[0].get("name") in LIFECYCLE:
            return                              # no lifecycle events about lifecycle handlers
        self.emit_lifecycle(run, status, output, error)

    def emit_lifecycle(self, run: Run, status: str, output: Any, error: dict | None) -> None:
        base = {"function_id": run.fn_slug, "run_id": run.run_id, "event": run.events[0],
                "events": run.events}
        finished = dict(base, _inngest={"status": status})
        if status == COMPLETED:
            finished["result"] = output
        else:
            finished["error"] = error or _error_of(output, status)
            if status == FAILED:
                finished["result"] = output
        if run.correlation_id:
            finished["correlation_id"] = run.correlation_id
        self.emit("inngest/function.finished", finished)
        if status == FAILED:
            failed = dict(base, error=finished["error"], result=output,
                          _inngest={"status": FAILED})
            self.emit("inngest/function.failed", failed, event_id=run.run_id)
        elif status == CANCELLED:
            self.emit("inngest/function.cancelled", dict(base, _inngest={"status": CANCELLED}),
                      event_id=run.run_id)

    def cancel(self, run_id: str, reason: str = "cancelled") -> Run:
        run = self.store.runs.get(run_id)
        if run is None:
            raise EngineError(f"run {run_id} not found")
        self.finish(run, CANCELLED, None, reason=reason,
                    error={"name": "Cancelled", "message": reason})
        return run

    # -- replay ----------------------------------------------------------------------------
    def rerun(self, run_id: str, from_step: str | None = None) -> Run:
        original = self.store.runs.get(run_id)
        if original is None:
            raise EngineError(f"run {run_id} not found")
        if original.cron:
            raise EngineError(CRON_RERUN.format(run=run_id))
        fn = self.store.functions.get(original.fn_slug)
        if fn is None:
            raise EngineError(f"function {original.fn_slug} of run {run_id} is no longer synced")
        events = [self.store.events[i] for i in original.event_ids if i in self.store.events]
        if not events:
            raise EngineError(f"the events of run {run_id} are no longer stored")
        memo_steps: list[Step] = []
        if from_step:
            target = self._resolve_step(original, from_step)
            started = sorted((s for s in original.steps.values() if s.started_at is not None),
                             key=lambda s: (s.started_at, original.step_order.index(s.hash)
                                            if s.hash in original.step_order else 0))
            for step in started:
                if step.hash == target.hash:
                    break
                if step.hash in original.memo:
                    memo_steps.append(step)
        new = self.create_run(fn, events, original_run_id=original.original_run_id or run_id,
                              bypass_limits=True, batch_id=original.batch_id)
        order = {h: i for i, h in enumerate(original.stack)}
        for step in sorted(memo_steps, key=lambda s: order.get(s.hash, 1 << 30)):
            new.memo[step.hash] = original.memo[step.hash]
            new.stack.append(step.hash)
            new.steps[step.hash] = Step(hash=step.hash, name=step.name, op=step.op,
                                        status="COMPLETED", queued_at=new.queued_at,
                                        started_at=new.queued_at, ended_at=new.queued_at,
                                        output=original.memo[step.hash], has_output=True,
                                        info=dict(step.info), memoized=True)
            new.step_order.append(step.hash)
        self.store.touch("run", new.run_id)
        return new

    def _resolve_step(self, run: Run, step_ref: str) -> Step:
        if step_ref in run.steps:
            return run.steps[step_ref]
        named = [s for s in run.steps.values() if s.name == step_ref]
        if len(named) == 1:
            return named[0]
        if len(named) > 1:
            raise EngineError(f"step name {step_ref!r} is ambiguous in run {run.run_id}; "
                              "use the hashed step id")
        if step_hash(step_ref) in run.steps:
            return run.steps[step_hash(step_ref)]
        raise EngineError(f"step {step_ref!r} not found in run {run.run_id}")

    def invoke(self, slug: str, data: dict | None, user: dict | None = None) -> Run:
        """A manual invoke (dashboard Invoke, GraphQL invokeFunction): an
        ``inngest/function.invoked`` event aimed at one function, with the server's
        ``_inngest`` metadata and no ``scheduledAt`` even for a cron function."""
        fn = self.find_function(slug)
        if fn is None:
            raise EngineError(f"function {slug!r} not found")
        payload = dict(data or {})
        payload["_inngest"] = {"fn_id": fn.slug, "source_app_id": "", "source_fn_id": "",
                               "source_fn_v": 0, "expire": 0, "gid": "", "name": ""}
        return self.create_run(fn, [self.record_event(INVOKED, payload, user=user)])

    def replay(self, slug: str, *, since_ms: int | None, until_ms: int | None,
               statuses: set[str], error_contains: str | None = None) -> dict:
        """Bulk Replay: rerun from the start every run of ``slug`` queued in the window
        whose status is in ``statuses`` (REST words) and whose error mentions the text."""
        fn = self.find_function(slug)
        if fn is None:
            raise EngineError(f"function {slug!r} not found")
        needle = (error_contains or "").lower()
        replayed, skipped = [], []
        for run in sorted(self.store.runs.values(), key=lambda r: r.run_id):
            if run.fn_slug != fn.slug or run.status not in statuses:
                continue
            if (since_ms is not None and run.queued_at < since_ms) or \
                    (until_ms is not None and run.queued_at > until_ms):
                continue
            if needle and needle not in _error_text(run).lower():
                continue
            if run.cron:
                skipped.append({"run_id": run.run_id,
                                "reason": "cron-triggered runs cannot be rerun"})
                continue
            try:
                new = self.rerun(run.run_id)
            except EngineError as exc:
                skipped.append({"run_id": run.run_id, "reason": str(exc)})
                continue
            replayed.append({"original_run_id": run.run_id, "run_id": new.run_id})
        return {"function": fn.slug, "run_ids": [r["run_id"] for r in replayed],
                "replayed": replayed, "skipped": skipped}

    def find_function(self, ref: str) -> Function | None:
        if ref in self.store.functions:
            return self.store.functions[ref]
        for fn in self.store.functions.values():
            if ref in (fn.id, fn.name) or fn.slug.endswith("-" + ref):
                return fn
        return None

    # -- pauses ----------------------------------------------------------------------------
    def add_pause(self, pause: Pause) -> None:
        self.store.put("pause", pause.id, pause)

    def resume_pauses(self, event: Event) -> None:
        for pause in [p for p in self.store.pauses.values() if p.event == event.name]:
            if pause.id not in self.store.pauses:
                continue
            run = self.store.runs.get(pause.run_id)
            if run is None or run.status in TERMINAL:
                self.store.delete("pause", pause.id)
                continue
            if pause.kind == "invoke":
                if event.data.get("correlation_id") == pause.correlation_id:
                    self._resume_invoke(run, pause, event)
                continue
            if event.internal_id in run.event_ids or event.received_at < pause.created_at:
                continue                        # no lookback, never its own trigger
            if pause.kind == "cancel" and event.internal_id <= run.run_id:
                continue
            if pause.expires_at <= self.now():
                continue
            try:
                matched = (not pause.expression
                           or expressions.truthy(pause.expression, run.event, event.wire()))
            except expressions.ExpressionError as exc:
                self.store.delete("pause", pause.id)
                self.fail_run(run, f"wait_for_event expression failed: {exc}")
                continue
            if not matched:
                continue
            self.store.delete("pause", pause.id)
            if pause.kind == "cancel":
                self.cancel(run.run_id, f"cancelled by event {event.name} ({event.internal_id})")
            else:
                step = run.steps.get(pause.step_hash)
                if step:
                    step.info.update(foundEventID=event.internal_id, timedOut=False)
                self._drop_timeout_items(pause.id)
                self.resolve_step(run, pause.step_hash, event.wire(), status="COMPLETED")

    def _drop_timeout_items(self, pause_id: str) -> None:
        for item in [i for i in self.store.items.values() if i.payload.get("pause") == pause_id]:
            self.scheduler.remove(item.id)

    def _resume_invoke(self, run: Run, pause: Pause, event: Event) -> None:
        self.store.delete("pause", pause.id)
        self._drop_timeout_items(pause.id)
        data = event.data
        if "error" in data:
            value = {"error": _with_name_message(data["error"])}
            status = "FAILED"
        else:
            value = {"data": data.get("result")}
            status = "COMPLETED"
        self.resolve_step(run, pause.step_hash, value, status=status)

    def resolve_step(self, run: Run, step_id: str, value: Any, *, status: str,
                     after_sleep: bool = False) -> None:
        """Store a step's value (memo), close its span and ask the SDK for what comes next."""
        now = self.now()
        run.memo[step_id] = value
        if step_id not in run.stack:
            run.stack.append(step_id)
        step = run.steps.get(step_id)
        if step is not None:
            step.status, step.ended_at = status, now
            step.output, step.has_output = value, True
            if step.attempts:
                step.attempts[-1].update(status=status, ended_at=now)
        self.store.touch("run", run.run_id)
        if run.pending:
            if step_id in run.pending:
                run.pending.remove(step_id)
            if run.pending:
                return
        self.enqueue_call(run, after_sleep=after_sleep)

    def fail_run(self, run: Run, message: str) -> None:
        self.fail_run_with(run, "Error", message)

    def fail_run_with(self, run: Run, name: str, message: str) -> None:
        output = {"name": name, "message": message}
        self.finish(run, FAILED, output, reason=message,
                    error={"error": name, "name": name, "message": message})

    # -- timers ----------------------------------------------------------------------------
    def on_timer(self, item: Item) -> None:
        if item.kind in ("debounce", "batch"):
            fired = self.buffers.fire(item.payload["buffer"])
            if fired:
                fn = self.store.functions.get(fired[0])
                events = [self.store.events[i] for i in fired[1] if i in self.store.events]
                if fn and events:
                    batch_id = new_ulid(self.now()) if item.kind == "batch" else None
                    self.create_run(fn, events, batch_id=batch_id)
            return
        if item.kind == "cron":
            self.cron.fire(item)
            return
        run = self.store.runs.get(item.run_id)
        if run is None or run.status in TERMINAL:
            return
        if item.kind == "sleep":
            self.resolve_step(run, item.payload["step"], None, status="COMPLETED",
                              after_sleep=True)
        elif item.kind in ("wait_timeout", "invoke_timeout"):
            pause = self.store.pauses.get(item.payload["pause"])
            if pause is None:
                return
            self.store.delete("pause", pause.id)
            step = run.steps.get(pause.step_hash)
            if step:
                step.info["timedOut"] = True
            if item.kind == "wait_timeout":
                self.resolve_step(run, pause.step_hash, None, status="COMPLETED")
            else:
                msg = "Timed out waiting for invoked function to complete"
                err = {"error": f"InngestInvokeTimeoutError: {msg}",
                       "name": "InngestInvokeTimeoutError", "message": msg}
                self.resolve_step(run, pause.step_hash, {"error": err}, status="FAILED")
        elif item.kind == "start_timeout" and run.status == SCHEDULED:
            self.cancel(run.run_id, "timeouts.start: the run did not start in time")
        elif item.kind == "finish_timeout":
            self.cancel(run.run_id, "timeouts.finish: the run did not finish in time")

    # -- flow-control hooks the scheduler calls ----------------------------------------------
    def counters(self, item: Item) -> list[list]:
        run = self.store.runs.get(item.run_id)
        counters = list(run.concurrency_keys) if run else []
        plan = tiers.account_counter(self.tier)    # the plan's account-wide step limit
        return counters + [plan] if plan and run else counters

    def blocking_counter(self, item: Item) -> str | None:
        for key, limit in self.counters(item):
            if self.scheduler.slots.get(key, 0) >= limit:
                return key
        return None

    def priority_key(self, item: Item) -> int:
        run = self.store.runs.get(item.run_id)
        if run is None:
            return item.at
        return run.queued_at - run.priority * 1000

    def internal_failure(self, item: Item) -> None:
        run = self.store.runs.get(item.run_id)
        self.scheduler.remove(item.id)
        if run is not None:
            self.fail_run(run, "the engine hit an internal error running this step; "
                               "see the engine log")

    # -- sync hook -------------------------------------------------------------------------
    def functions_changed(self, app: str) -> None:
        self.cron.schedule_all()


def _name_matches(pattern: str, name: str) -> bool:
    if pattern == name:
        return True
    if pattern.endswith("*"):
        return name.startswith(pattern[:-1])
    return False


def _with_name_message(err: Any) -> dict:
    if not isinstance(err, dict):
        err = {"message": str(err)}
    err = dict(err)
    err.setdefault("name", "Error")
    err.setdefault("message", "the invoked function failed")
    return err


def _error_text(run: Run) -> str:
    """Everything a run's failure says, for bulk replay's error filter."""
    parts = [run.ended_reason or "", run.skip_reason or ""]
    if isinstance(run.output, dict):
        parts += [str(run.output.get("name") or ""), str(run.output.get("message") or "")]
    elif run.output is not None:
        parts.append(str(run.output))
    return " ".join(parts)


def _error_of(output: Any, status: str) -> dict:
    if isinstance(output, dict):
        return {"error": output.get("name", "Error"), "name": output.get("name", "Error"),
                "message": output.get("message", ""), "stack": output.get("stack", "")}
    return {"error": status, "name": status, "message": str(output or status)}

