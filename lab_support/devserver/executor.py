"""Executing one queued call: build the SDK request, send it, and apply each opcode.

| SDK answer            | what the engine does                                              |
|-----------------------|-------------------------------------------------------------------|
| 200 + value           | run Completed, output = value                                     |
| 206 StepRun           | memo {"data": ...}, then ask again (discovery)                    |
| 206 StepError         | retry the same call with backoff (the step runs again)            |
| 206 StepFailed        | memo {"error": ...}; the SDK raises StepError in user code        |
| 206 StepPlanned       | a targeted call per planned step (parallel); discovery when done  |
| 206 Sleep             | a timer at the wake time; memo null when it fires                 |
| 206 WaitForEvent      | a pause (+ timeout timer); memo = the event, or null on timeout   |
| 206 InvokeFunction    | a child run; its result or error comes back as the memo           |
| 206 AIGateway         | the engine makes the HTTP call itself; memo = the response body   |
|                       | (ai_gateway.py: capped, strict JSON, else the step fails)         |
| 5xx / timeout         | retry with backoff, unless x-inngest-no-retry; then run Failed    |
| unreachable host      | retried until the host is back; does not use up attempts          |
| an unusable answer    | run Failed with the reason, not retried (sdk_call.py: no ops,     |
|                       | over 8 MiB, bad signature, NaN ...)                               |

Loops an app can start are bounded (limits.py): a step planned more than
``MAX_PLANS_PER_STEP`` times, or a run with more than ``MAX_PLANS_PER_RUN`` plans, fails the
run; an invoke from a run already ``MAX_INVOKE_DEPTH`` invokes deep fails that invoke step.
"""

from __future__ import annotations

import random
import zlib
from typing import Any

from . import expressions, tiers
from .ai_gateway import call_model
from .durations import DurationError, duration_or_time_ms
from .ids import new_ulid, parse_time_ms, rfc3339
from .limits import MAX_INVOKE_DEPTH, MAX_PLANS_PER_RUN, MAX_PLANS_PER_STEP
from .models import COMPLETED, FAILED, TERMINAL, Item, Pause, Run, Step
from .sdk_call import SdkAnswer, call_sdk, step_url

BACKOFF_S = [15, 30, 60, 120, 300, 600, 1200, 2400, 3600, 7200]
JITTER_S = 30
MAX_STEPS = 1000
MAX_SLEEP_MS = 366 * 86_400_000
OP_KIND = {"StepRun": "RUN", "StepError": "RUN", "StepFailed": "RUN", "StepPlanned": "RUN",
           "Sleep": "SLEEP", "WaitForEvent": "WAIT_FOR_EVENT", "InvokeFunction": "INVOKE",
           "AIGateway": "AI_GATEWAY"}


class Executor:
    def __init__(self, engine) -> None:
        self.engine = engine

    # -- one call --------------------------------------------------------------------------
    async def execute(self, item: Item) -> None:
        engine = self.engine
        run = engine.store.runs.get(item.run_id)
        fn = engine.store.functions.get(run.fn_slug) if run else None
        if run is None or run.status in TERMINAL:
            engine.scheduler.remove(item.id)
            return
        if fn is None:
            engine.scheduler.remove(item.id)
            engine.fail_run(run, f"function {run.fn_slug} is no longer synced")
            return
        engine.mark_started(run)
        if engine.chaos.active_for(fn.slug, run.run_id):
            run.force_plan = True           # planned steps let chaos act before a body runs
        # The slot's acquisition time, so a step's trace start and the stats series agree
        # to the millisecond (a busy loop can tick the clock between the two readings).
        started = item.started_ms if item.started_ms is not None else engine.now()
        item.started_ms = None
        if item.target:
            self._attempt_started(run, item, started)
        rule = engine.chaos.take(fn.slug, item.target_name, run.run_id) if item.target else None
        if rule and rule["mode"] == "raise":
            answer = _chaos_step_error(item, rule, final=item.attempt + 1 >= run.max_attempts)
        elif rule and rule["mode"] in ("http_503", "timeout"):
            answer = SdkAnswer("error", 503 if rule["mode"] == "http_503" else 0,
                               message=_chaos_message(rule))
        else:
            answer = await call_sdk(engine.http, step_url(fn.url, item.target or "step"),
                                    self.payload(run, fn, item), self.headers(run, item),
                                    engine.sdk_timeout_s, engine.signing_key)
            if rule and rule["mode"] == "lose_response":
                answer = SdkAnswer("error", 0, message=_chaos_message(rule))
            elif rule and rule["mode"] == "slow":
                # The body ran; its answer arrives `duration` after the call started, and the
                # call keeps its concurrency slots meanwhile (the clock may jump to then).
                await engine.scheduler.hold(item, started + rule["duration_ms"])
        run = engine.store.runs.get(item.run_id)
        if run is None or run.status in TERMINAL:
            engine.scheduler.remove(item.id)      # cancelled while the call was in flight
            return
        run.request_version = 2
        engine.store.touch("run", run.run_id)
        if answer.kind == "ops":
            await self.apply_ops(run, item, answer, started)
        elif answer.kind == "done":
            engine.scheduler.remove(item.id)
            engine.finish(run, COMPLETED, answer.body)
        elif answer.kind == "unreachable":
            item.unreachable += 1
            wait_ms = min(1000 * 2 ** min(item.unreachable, 5), 30_000)
            engine.scheduler.reschedule(item, engine.now() + wait_ms, internal=False)
        else:
            self.call_failed(run, item, answer)

    def payload(self, run: Run, fn, item: Item) -> dict:
        return {
            "event": run.events[0], "events": run.events, "steps": run.memo,
            "ctx": {"run_id": run.run_id, "fn_id": fn.id, "env": "", "step_id": item.target or "step",
                    "attempt": item.attempt, "max_attempts": run.max_attempts,
                    "stack": {"stack": list(run.stack), "current": len(run.stack)},
                    "disable_immediate_execution": run.force_plan, "use_api": False,
                    "qi_id": item.id, "job_id": item.id},
            "use_api": False, "version": max(run.request_version, 1), "defers": {},
        }

    def headers(self, run: Run, item: Item) -> dict:
        return {"X-Run-ID": run.run_id, "x-request-id": new_ulid(),
                "x-inngest-job-id": item.id,
                "x-inngest-req-version": str(run.request_version),
                "X-Inngest-Step-ID": item.target or "step"}

    # -- failures of the call itself -------------------------------------------------------
    def call_failed(self, run: Run, item: Item, answer: SdkAnswer) -> None:
        engine = self.engine
        body = answer.body if isinstance(answer.body, dict) else None
        error = {"name": (body or {}).get("name", "Error"),
                 "message": (body or {}).get("message") or answer.message,
                 "stack": (body or {}).get("stack", "")}
        if item.target:
            self._attempt_ended(run, item, "FAILED", error)
        if not answer.no_retry and item.attempt + 1 < run.max_attempts:
            self.retry(run, item, answer.retry_after)
            return
        engine.scheduler.remove(item.id)
        output = body if body is not None else {"name": "Error", "message": answer.message}
        kind = "NonRetriableError" if answer.no_retry else error["name"]
        engine.finish(run, FAILED, output, reason=error["message"],
                      error={"error": kind, **error})

    def retry(self, run: Run, item: Item, retry_after: str | None = None) -> None:
        engine = self.engine
        now = engine.now()
        at = now + self.backoff_ms(run.run_id, item.attempt)
        if retry_after:
            at = _retry_after_ms(retry_after, now, engine.clock.wall_ms()) or at
        item.attempt += 1
        engine.scheduler.reschedule(item, at)

    def backoff_ms(self, run_id: str, attempt: int) -> int:
        if self.engine.retry_interval_s:
            return int(self.engine.retry_interval_s * 1000)
        base = BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]
        # Deterministic jitter: the same run retries at the same times on every rerun.
        rng = random.Random(zlib.crc32(f"{run_id}:{attempt}".encode()))
        return int((base + rng.uniform(0, JITTER_S)) * 1000)

    # -- opcodes ---------------------------------------------------------------------------
    async def apply_ops(self, run: Run, item: Item, answer: SdkAnswer, started: int) -> None:
        engine = self.engine
        ops = sorted(answer.ops, key=lambda op: op.get("op") != "WaitForEvent")
        if len(ops) > 1:
            run.force_plan = True
            # As the dev server does: with several ops outstanding (parallel invokes, sleeps,
            # waits), the run is called again when the last one has its result, not after each
            # (a call in between would report the others again and start them twice).
            run.pending.extend(op["id"] for op in ops if op.get("id") not in run.pending)
        if len(run.steps) + len(ops) > MAX_STEPS:
            engine.scheduler.remove(item.id)
            engine.fail_run(run, f"The function run exceeded the step limit of {MAX_STEPS} steps.")
            return
        for op in ops:
            if run.status in TERMINAL:
                break
            kind = op.get("op")
            if kind == "StepError":
                final = answer.no_retry or item.attempt + 1 >= run.max_attempts
                if not final:
                    self._step(run, op, started)
                    self._attempt_ended(run, item, "FAILED", op.get("error"), op=op)
                    self.retry(run, item)
                    return
                kind = "StepFailed"
            engine.scheduler.remove(item.id)
            handler = getattr(self, f"op_{kind}", None)
            if handler is None:
                engine.fail_run(run, f"the SDK sent an opcode this engine does not handle: {kind}")
                return
            await handler(run, item, op, started)

    async def op_StepRun(self, run: Run, item: Item, op: dict, started: int) -> None:
        self._step(run, op, started)
        self._attempt_ended(run, item, "COMPLETED", None, op=op)
        self.engine.resolve_step(run, op["id"], {"data": op.get("data")}, status="COMPLETED")

    async def op_StepFailed(self, run: Run, item: Item, op: dict, started: int) -> None:
        self._step(run, op, started)
        error = dict(op.get("error") or {})
        error.pop("code", None)
        error.setdefault("name", "Error")
        error.setdefault("message", "step failed")
        self._attempt_ended(run, item, "FAILED", error, op=op)
        self.engine.resolve_step(run, op["id"], {"error": error}, status="FAILED")

    async def op_StepPlanned(self, run: Run, item: Item, op: dict, started: int) -> None:
        step = self._step(run, op, None)
        step.planned += 1
        loop = _planning_loop(run, step)
        if loop:
            self.engine.fail_run(run, loop)
            return
        step.status = "QUEUED"
        if op["id"] not in run.pending:
            run.pending.append(op["id"])
        name = (op.get("userland") or {}).get("id") or op.get("name")
        self.engine.enqueue_call(run, at=self.engine.now() - 1, target=op["id"], target_name=name)

    async def op_Sleep(self, run: Run, item: Item, op: dict, started: int) -> None:
        engine = self.engine
        step = self._step(run, op, started)
        opts = op.get("opts") or {}
        try:
            if opts.get("duration"):
                wake = duration_or_time_ms(str(opts["duration"]), engine.now())
            else:
                # The SDK sends its own wall-clock wake time; keep the duration, on our clock.
                wake = engine.now() + max(0, parse_time_ms(op["name"]) - engine.clock.wall_ms())
        except (ValueError, DurationError):
            engine.fail_run(run, f"invalid sleep {op.get('name')!r}")
            return
        if wake - engine.now() > MAX_SLEEP_MS:
            engine.fail_run(run, "sleeps longer than 366 days are not allowed")
            return
        over_plan = tiers.sleep_problem(engine.tier, wake - engine.now(), op.get("name"))
        if over_plan:
            engine.fail_run_with(run, *over_plan)
            return
        step.status = "RUNNING"
        step.info = {"type": "SleepStepInfo", "sleepUntil": rfc3339(wake)}
        engine.timer("sleep", run.run_id, wake, payload={"step": op["id"]})

    async def op_WaitForEvent(self, run: Run, item: Item, op: dict, started: int) -> None:
        engine = self.engine
        step = self._step(run, op, started)
        opts = op.get("opts") or {}
        expression = opts.get("if")
        if expression:
            try:
                expressions.compile_expression(expression)
            except expressions.ExpressionError as exc:
                engine.fail_run(run, f"wait_for_event: {exc}")
                return
        try:
            expires = duration_or_time_ms(str(opts.get("timeout") or "0s"), engine.now())
        except DurationError as exc:
            engine.fail_run(run, f"wait_for_event: {exc}")
            return
        pause = Pause(id=f"pause-{new_ulid()}", run_id=run.run_id, kind="wait",
                      event=op.get("name", ""), expression=expression, expires_at=expires,
                      step_hash=op["id"], created_at=engine.now())
        step.status = "WAITING"
        step.info = {"type": "WaitForEventStepInfo", "eventName": pause.event,
                     "expression": expression, "timeout": rfc3339(expires),
                     "foundEventID": None, "timedOut": None}
        engine.add_pause(pause)
        engine.timer("wait_timeout", run.run_id, expires, internal=False,
                     payload={"pause": pause.id})

    async def op_InvokeFunction(self, run: Run, item: Item, op: dict, started: int) -> None:
        engine = self.engine
        step = self._step(run, op, started)
        opts = op.get("opts") or {}
        target_ref = opts.get("function_id", "")
        correlation = f"{run.run_id}.{op['id']}"
        now = engine.now()
        try:
            expires = (duration_or_time_ms(str(opts["timeout"]), now) if opts.get("timeout")
                       else now + 365 * 86_400_000)
        except DurationError as exc:
            engine.fail_run(run, f"invoke: {exc}")
            return
        pause = Pause(id=f"pause-{new_ulid()}", run_id=run.run_id, kind="invoke",
                      event="inngest/function.finished", expression=None, expires_at=expires,
                      step_hash=op["id"], created_at=now, correlation_id=correlation)
        engine.add_pause(pause)
        engine.timer("invoke_timeout", run.run_id, expires, internal=False,
                     payload={"pause": pause.id})
        step.status = "WAITING"
        step.info = {"type": "InvokeStepInfo", "functionID": target_ref, "runID": None,
                     "timedOut": None}
        target = engine.find_function(target_ref)
        depth = _invoke_depth(engine, run)
        if target is not None and depth >= MAX_INVOKE_DEPTH:
            engine.emit("inngest/function.finished", {
                "correlation_id": correlation, "function_id": target.slug,
                "error": {"name": "Error", "message": (
                    f"invoke depth limit: run {run.run_id} is already {depth} invokes deep "
                    f"(at most {MAX_INVOKE_DEPTH}); {target.slug} was not started")}})
            return
        payload = opts.get("payload") or {}
        data = dict(payload.get("data") or {})
        data["_inngest"] = {"fn_id": target_ref, "correlation_id": correlation,
                            "expire": expires, "name": op.get("displayName") or op.get("name"),
                            "source_app_id": run.app, "source_fn_id": run.fn_id}
        if target is None:
            engine.emit("inngest/function.finished", {
                "correlation_id": correlation, "function_id": target_ref,
                "error": {"name": "Error",
                          "message": f"could not find function with ID: {target_ref}"}})
            return
        event = engine.record_event("inngest/function.invoked", data, v=payload.get("v"))
        child = engine.create_run(target, [event], correlation_id=correlation,
                                  parent_run_id=run.run_id)
        step.info["runID"] = child.run_id
        if child.status in TERMINAL and child.status != COMPLETED:
            engine.emit("inngest/function.finished", {
                "correlation_id": correlation, "function_id": target.slug,
                "error": {"name": "Error", "message": child.skip_reason or "invoke skipped"}})

    async def op_AIGateway(self, run: Run, item: Item, op: dict, started: int) -> None:
        engine = self.engine
        step = self._step(run, op, started)
        engine.scheduler.busy_external += 1
        try:
            answer = await call_model(engine.http, op.get("opts"), engine.sdk_timeout_s)
        finally:
            engine.scheduler.busy_external -= 1
        if run.status in TERMINAL:
            return
        step.info = {"type": "RunStepInfo", "aiRequest": True}
        if answer.kind == "ok":
            self.engine.resolve_step(run, op["id"], {"data": answer.data}, status="COMPLETED")
            return
        if answer.kind == "unusable":      # the same request would get the same answer
            err = {"name": "AIGatewayError", "message": answer.message, "stack": ""}
            self.engine.resolve_step(run, op["id"], {"error": err}, status="FAILED")
            return
        status, text = answer.status, answer.text
        if item.attempt + 1 < run.max_attempts:
            step.attempts.append({"attempt": item.attempt, "status": "FAILED",
                                  "started_at": started, "ended_at": engine.now(),
                                  "error": {"name": "AIGatewayError", "message": text[:500]}})
            self.retry(run, item)
            return
        err = {"name": "AIGatewayError",
               "message": f"Error making AI request: unsuccessful status code: {status}",
               "data": text or '{"error":"Error making AI request"}', "stack": text}
        self.engine.resolve_step(run, op["id"], {"error": err}, status="FAILED")

    # -- spans -----------------------------------------------------------------------------
    def _step(self, run: Run, op: dict, started: int | None) -> Step:
        step_id = op["id"]
        step = run.steps.get(step_id)
        # The user's step id; a Sleep's `name` is its wake time, so never fall back to it.
        name = ((op.get("userland") or {}).get("id") or op.get("displayName")
                or ("sleep" if op.get("op") == "Sleep" else op.get("name")))
        kind = OP_KIND.get(op.get("op", ""), "RUN")
        if step is None:
            now = self.engine.now()
            step = Step(hash=step_id, name=name, op=kind, queued_at=started or now,
                        started_at=started)
            run.steps[step_id] = step
            run.step_order.append(step_id)
        if step.started_at is None and started is not None:
            step.started_at = started
        return step

    def _attempt_started(self, run: Run, item: Item, started: int) -> None:
        step = run.steps.get(item.target)
        if step is not None:
            step.status = "RUNNING"
            if step.started_at is None:
                step.started_at = started
            step.attempts.append({"attempt": item.attempt, "status": "RUNNING",
                                  "started_at": started, "ended_at": None, "error": None})

    def _attempt_ended(self, run: Run, item: Item, status: str, error: Any,
                       op: dict | None = None) -> None:
        step_id = (op or {}).get("id") or item.target
        step = run.steps.get(step_id) if step_id else None
        if step is None:
            return
        now = self.engine.now()
        if not step.attempts or step.attempts[-1]["ended_at"] is not None:
            step.attempts.append({"attempt": item.attempt, "status": status,
                                  "started_at": step.started_at if not step.attempts else now,
                                  "ended_at": now, "error": error})
        else:
            step.attempts[-1].update(status=status, ended_at=now, error=error)
        if status == "FAILED":
            step.status = "RUNNING" if item.attempt + 1 < run.max_attempts else "FAILED"
            step.info["lastError"] = error


def _planning_loop(run: Run, step: Step) -> str | None:
    """An app that keeps planning and never runs must not call itself forever."""
    if step.planned > MAX_PLANS_PER_STEP:
        return (f"step {step.name!r} was planned {step.planned} times without running "
                f"(limit {MAX_PLANS_PER_STEP}): the app keeps answering StepPlanned for it")
    total = sum(s.planned for s in run.steps.values())
    if total > MAX_PLANS_PER_RUN:
        return (f"the run's steps were planned {total} times (limit {MAX_PLANS_PER_RUN}): "
                "the app keeps answering StepPlanned")
    return None


def _invoke_depth(engine, run: Run) -> int:
    """How many invokes led to ``run``: 0 for a run an event started."""
    depth, seen = 0, {run.run_id}
    parent = run.parent_run_id
    while parent and parent not in seen and depth <= MAX_INVOKE_DEPTH:
        depth, seen = depth + 1, seen | {parent}
        holder = engine.store.runs.get(parent)
        parent = holder.parent_run_id if holder else None
    return depth


def _retry_after_ms(value: str, now: int, wall: int) -> int | None:
    value = value.strip()
    try:
        if len(value) <= 7:
            delay = int(value) * 1000
        else:
            delay = parse_time_ms(value) - wall
    except ValueError:
        return None
    return now + max(1000, min(delay, 86_400_000))


def _chaos_message(rule: dict) -> str:
    count = "every call" if rule["times"] is None else f"{rule['used']} of {rule['times']}"
    return (f"lab chaos ({rule['mode']}): injected failure of step {rule['step']!r} "
            f"in {rule['function']} ({count})")


def _chaos_step_error(item: Item, rule: dict, *, final: bool) -> SdkAnswer:
    op = {"id": item.target, "name": item.target_name, "displayName": item.target_name,
          "op": "StepFailed" if final else "StepError", "opts": None, "data": None,
          "userland": {"id": item.target_name, "index": None},
          "error": {"name": "ChaosError", "message": _chaos_message(rule), "stack": ""}}
    return SdkAnswer("ops", 206, ops=[op])
