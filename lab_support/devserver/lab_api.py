"""Lab-only endpoints (``/lab/v1``): the clock, chaos rules, reset, sync, a run list, and the
capabilities the course needs beyond the dev server: executing-step history (``stats/steps``),
plan limits (``tier``), billed executions (``executions``) and bulk Replay (``replay``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from . import executions, expressions, tiers
from .chaos import ChaosError
from .clock import ClockError
from .durations import DurationError, parse_duration_ms
from .engine import EngineError
from .ids import parse_time_ms, rfc3339
from .models import GQL_RUN_STATUS
from .sync import SyncError, ping_sdk
from .views import lab_run_record

router = APIRouter(prefix="/lab/v1")


def _engine(request: Request):
    return request.app.state.engine


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status)


async def _body(request: Request) -> dict:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise ValueError("the body must be JSON") from None
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    return body


def clock_view(engine) -> dict:
    clock = engine.clock
    nxt = engine.scheduler.next_timer()
    return {"mode": clock.mode, "now": rfc3339(clock.now_ms()), "now_ms": clock.now_ms(),
            "offset_ms": clock.offset_ms, "auto_advance": clock.auto_advance,
            "until": rfc3339(clock.until_ms), "next_timer": rfc3339(nxt.at) if nxt else None,
            "next_timer_kind": nxt.kind if nxt else None}


@router.get("/clock")
def get_clock(request: Request):
    return clock_view(_engine(request))


@router.post("/clock/advance")
async def advance_clock(request: Request):
    engine = _engine(request)
    try:
        body = await _body(request)
        if body.get("to_next_timer"):
            nxt = engine.scheduler.next_timer()
            if nxt is not None:
                engine.clock.advance_to(nxt.at)
        elif "seconds" in body:
            engine.clock.advance(int(float(body["seconds"]) * 1000))
        elif "duration" in body:
            engine.clock.advance(parse_duration_ms(body["duration"]))
        elif "to" in body:
            engine.clock.advance_to(parse_time_ms(str(body["to"])))
        else:
            return _error('give one of "seconds", "duration", "to" or "to_next_timer"')
    except (ClockError, DurationError, ValueError, TypeError) as exc:
        return _error(str(exc))
    engine.clock_moved()
    engine.scheduler.run_due()      # so the answer shows the timers after the jump
    engine.scheduler.poke()
    return clock_view(engine)


@router.post("/clock/auto")
async def auto_clock(request: Request):
    engine = _engine(request)
    try:
        body = await _body(request)
        if engine.clock.mode != "virtual" and body.get("enabled"):
            raise ClockError("auto-advance needs the virtual clock")
        engine.clock.auto_advance = bool(body.get("enabled", True))
        engine.clock.until_ms = parse_time_ms(body["until"]) if body.get("until") else None
    except (ClockError, ValueError) as exc:
        return _error(str(exc))
    engine.scheduler.poke()
    return clock_view(engine)


@router.post("/chaos")
async def add_chaos(request: Request):
    engine = _engine(request)
    try:
        body = await _body(request)
        times = body.get("times", 1)
        duration = body.get("duration")
        duration_ms = None
        if duration is not None:   # "8s", or a number of seconds
            duration_ms = (parse_duration_ms(duration) if isinstance(duration, str)
                           else int(float(duration) * 1000))
        rule = engine.chaos.add(str(body.get("function") or ""), str(body.get("step") or ""),
                                None if times is None else int(times),
                                str(body.get("mode", "raise")), duration_ms=duration_ms)
    except (ChaosError, DurationError, ValueError, TypeError) as exc:
        return _error(str(exc))
    return rule


@router.get("/chaos")
def list_chaos(request: Request):
    return {"data": _engine(request).chaos.rules}


@router.delete("/chaos")
def clear_chaos(request: Request):
    _engine(request).chaos.clear()
    return {"data": []}


@router.post("/reset")
def reset(request: Request):
    engine = _engine(request)
    engine.store.reset_runs()      # drops every queue item too; the scheduler skips them
    engine.singletons.clear()
    engine.chaos.clear()
    engine.step_stats.reset()
    engine.set_tier(engine.tier.tier if engine.tier else None)   # the plan outlives a reset
    engine.cron.schedule_all()
    return {"ok": True}


@router.post("/sync")
async def sync(request: Request):
    try:
        body = await _body(request)
        url = str(body.get("url") or "")
        if not url.startswith(("http://", "https://")):
            return _error('give the app\'s serve URL as {"url": "http://127.0.0.1:PORT/api/inngest"}')
        reply = await ping_sdk(url, server_kind=_engine(request).server_kind,
                               signing_key=_engine(request).signing_key)
    except ValueError as exc:
        return _error(str(exc))
    except SyncError as exc:
        return _error(str(exc), 502)
    return reply


@router.get("/runs")
def runs(request: Request, function: str | None = None, status: str | None = None,
         event_id: str | None = None, since: str | None = None, limit: int = 200):
    engine = _engine(request)
    try:
        since_ms = parse_time_ms(since) if since else None
    except ValueError as exc:
        return _error(f"invalid since: {exc}")
    fn = engine.find_function(function) if function else None
    if function and fn is None:
        return _error(f"function {function!r} not found", 404)
    out = []
    for run in sorted(engine.store.runs.values(), key=lambda r: r.run_id, reverse=True):
        if fn and run.fn_slug != fn.slug:
            continue
        if status and run.status.lower() != status.lower():
            continue
        if event_id and event_id not in run.event_ids:
            continue
        if since_ms is not None and run.queued_at < since_ms:
            continue
        out.append(lab_run_record(run))
        if len(out) >= limit:
            break
    return {"data": out}


@router.get("/stats")
def stats(request: Request):
    return _engine(request).scheduler.stats()


# -- capabilities beyond the dev server ------------------------------------------------------
def _function_slug(engine, function: str | None) -> str | None:
    if not function:
        return None
    fn = engine.find_function(function)
    if fn is None:
        raise LookupError(f"function {function!r} not found")
    return fn.slug


def _window(since: str | None, until: str | None) -> tuple[int | None, int | None]:
    try:
        return (parse_time_ms(since) if since else None, parse_time_ms(until) if until else None)
    except ValueError as exc:
        raise ValueError(f"since/until must be RFC 3339 times: {exc}") from None


@router.get("/stats/steps")
def step_stats(request: Request, function: str | None = None, key: str | None = None):
    """Executing steps over engine time: peak, peaks per key value, series."""
    engine = _engine(request)
    try:
        slug = _function_slug(engine, function)
        if key:
            expressions.compile_expression(key)
    except LookupError as exc:
        return _error(str(exc), 404)
    except expressions.ExpressionError as exc:
        return _error(str(exc))
    return engine.step_stats.summary(slug, key)


@router.get("/tier")
def get_tier(request: Request):
    plan = _engine(request).tier
    return {"tier": plan.tier if plan else None, "limits": plan.view() if plan else None,
            "plans": {name: p.view() for name, p in tiers.PLANS.items()}}


@router.post("/tier")
async def set_tier(request: Request):
    engine = _engine(request)
    try:
        body = await _body(request)
        if "tier" not in body:
            return _error('give {"tier": "hobby"}, {"tier": "pro"} or {"tier": null}')
        engine.set_tier(body["tier"])
    except (tiers.TierError, ValueError) as exc:
        return _error(str(exc))
    return get_tier(request)


@router.get("/executions")
def count_executions(request: Request, function: str | None = None, since: str | None = None,
                     until: str | None = None):
    """Runs, steps, attempts and billed executions, counted from the engine's runs."""
    engine = _engine(request)
    try:
        slug = _function_slug(engine, function)
        since_ms, until_ms = _window(since, until)
    except LookupError as exc:
        return _error(str(exc), 404)
    except ValueError as exc:
        return _error(str(exc))
    return executions.count(engine, slug, since_ms, until_ms)


REST_STATUS = {v: k for k, v in GQL_RUN_STATUS.items()}


@router.post("/replay")
async def bulk_replay(request: Request):
    """Bulk Replay: rerun from the start every matching run of one function."""
    engine = _engine(request)
    try:
        body = await _body(request)
        if not body.get("function"):
            return _error('bulk replay needs {"function": slug, "since", "until", '
                          '"statuses": ["FAILED"], "error_contains"}')
        since_ms, until_ms = _window(body.get("since"), body.get("until"))
        statuses = set()
        for status in body.get("statuses") or ["FAILED"]:
            word = REST_STATUS.get(str(status).upper()) or next(
                (s for s in GQL_RUN_STATUS if s.lower() == str(status).lower()), None)
            if word is None:
                return _error(f"unknown run status {status!r}; use one of "
                              f"{', '.join(GQL_RUN_STATUS.values())}")
            statuses.add(word)
        result = engine.replay(str(body["function"]), since_ms=since_ms, until_ms=until_ms,
                               statuses=statuses, error_contains=body.get("error_contains"))
    except EngineError as exc:
        return _error(str(exc), 404 if "not found" in str(exc) else 400)
    except ValueError as exc:
        return _error(str(exc))
    result["name"] = str(body.get("name") or "")
    return {"data": result}
