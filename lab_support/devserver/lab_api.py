"""Lab-only endpoints (``/lab/v1``): the clock, chaos rules, reset, sync, a run list, and the
capabilities the course needs beyond the dev server: executing-step history (``stats/steps``),
plan limits (``tier``), billed executions (``executions``) and bulk Replay (``replay``).

Every body is read by ``_body`` (``bodies.parse_json``: no NaN, no 64-bit overflow, bounded
depth) and the fields are type-checked before anything changes, so a bad request is a 400
with a message and the engine is exactly as it was.
"""

from __future__ import annotations

import math

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from . import executions, expressions, tiers
from .bodies import parse_json
from .chaos import ChaosError
from .clock import ClockError
from .durations import DurationError, parse_duration_ms
from .engine import EngineError
from .ids import parse_time_ms, rfc3339
from .limits import CLOCK_MAX_MS, EXPRESSION_MAX_CHARS
from .models import GQL_RUN_STATUS
from .sync import SyncError, sync_app
from .views import lab_run_record

MAX_CHAOS_RULES = 1000
MAX_URL_CHARS = 2048
MAX_RUNS_LISTED = 100_000

router = APIRouter(prefix="/lab/v1")


def _engine(request: Request):
    return request.app.state.engine


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status)


async def _body(request: Request) -> dict:
    """The JSON object body ({} when empty); ValueError (a JSONInputError) otherwise."""
    raw = await request.body()
    if not raw.strip():
        return {}
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    return body


def _number(body: dict, name: str) -> float:
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f'"{name}" must be a number, not {value!r}')
    return value


def _text(body: dict, name: str, default: str | None = None) -> str:
    value = body.get(name, default)
    if not isinstance(value, str):
        raise ValueError(f'"{name}" must be a string, not {value!r}')
    return value


def _time(value, name: str) -> int:
    if not isinstance(value, str):
        raise ValueError(f'"{name}" must be an RFC 3339 time string, not {value!r}')
    try:
        return parse_time_ms(value)
    except (ValueError, OverflowError) as exc:
        raise ValueError(f'"{name}" is not an RFC 3339 time: {exc}') from None


def clock_view(engine) -> dict:
    clock = engine.clock
    nxt = engine.scheduler.next_timer()
    return {"mode": clock.mode, "now": rfc3339(clock.now_ms()), "now_ms": clock.now_ms(),
            "offset_ms": clock.offset_ms, "auto_advance": clock.auto_advance,
            "until": rfc3339(clock.until_ms), "next_timer": rfc3339(nxt.at) if nxt else None,
            "next_timer_kind": nxt.kind if nxt else None}


@router.get("/clock")
async def get_clock(request: Request):
    return clock_view(_engine(request))


@router.post("/clock/advance")
async def advance_clock(request: Request):
    engine = _engine(request)
    try:
        body = await _body(request)
        given = [k for k in ("seconds", "duration", "to", "to_next_timer") if k in body]
        if len(given) != 1:
            return _error('give exactly one of "seconds", "duration", "to" or "to_next_timer"')
        if given == ["to_next_timer"]:
            if body["to_next_timer"] is not True:
                raise ValueError('"to_next_timer" must be true')
            nxt = engine.scheduler.next_timer()
            if nxt is not None:
                engine.clock.advance_to(nxt.at)
        elif given == ["seconds"]:
            engine.clock.advance(_number(body, "seconds") * 1000)
        elif given == ["duration"]:
            engine.clock.advance(parse_duration_ms(_text(body, "duration")))
        else:
            engine.clock.advance_to(_time(body["to"], "to"), limit_ms=CLOCK_MAX_MS)
    except (ClockError, DurationError, ValueError) as exc:
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
        enabled = body.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ValueError(f'"enabled" must be true or false, not {enabled!r}')
        if engine.clock.mode != "virtual" and enabled:
            raise ClockError("auto-advance needs the virtual clock")
        until = _time(body["until"], "until") if body.get("until") is not None else None
        engine.clock.auto_advance = enabled
        engine.clock.until_ms = until
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
        if times is not None and (isinstance(times, bool) or not isinstance(times, int)):
            raise ValueError(f'"times" must be a whole number (or null), not {times!r}')
        if len(engine.chaos.rules) >= MAX_CHAOS_RULES:
            raise ValueError(f"at most {MAX_CHAOS_RULES} chaos rules; DELETE /lab/v1/chaos "
                             "clears them")
        duration = body.get("duration")
        duration_ms = None
        if duration is not None:   # "8s", or a number of seconds
            duration_ms = (parse_duration_ms(duration) if isinstance(duration, str)
                           else parse_duration_ms(_number(body, "duration") * 1000))
        scope = body.get("scope")
        if scope is not None and not isinstance(scope, str):
            raise ValueError(f'"scope" must be a string, not {scope!r}')
        rule = engine.chaos.add(_text(body, "function", ""), _text(body, "step", ""), times,
                                _text(body, "mode", "raise"), duration_ms=duration_ms,
                                scope=scope)
    except (ChaosError, DurationError, ValueError) as exc:
        return _error(str(exc))
    return rule


@router.get("/chaos")
async def list_chaos(request: Request):
    return {"data": _engine(request).chaos.rules}


@router.delete("/chaos")
async def clear_chaos(request: Request):
    _engine(request).chaos.clear()
    return {"data": []}


@router.delete("/chaos/{rule_id}")
async def remove_chaos(request: Request, rule_id: str):
    engine = _engine(request)
    if not engine.chaos.remove(rule_id):
        return _error(f"no chaos rule {rule_id!r}", 404)
    return {"data": engine.chaos.rules}


@router.post("/reset")
async def reset(request: Request):
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
        url = body.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")) \
                or len(url) > MAX_URL_CHARS:
            return _error('give the app\'s serve URL as {"url": "http://127.0.0.1:PORT/api/inngest"}')
        reply = await sync_app(_engine(request), url)
    except ValueError as exc:
        return _error(str(exc))
    except SyncError as exc:
        return _error(str(exc), 502)
    return reply


@router.get("/runs")
async def runs(request: Request, function: str | None = None, status: str | None = None,
               event_id: str | None = None, since: str | None = None, limit: int = 200):
    engine = _engine(request)
    if not 1 <= limit <= MAX_RUNS_LISTED:
        return _error(f"limit must be between 1 and {MAX_RUNS_LISTED}")
    try:
        since_ms = parse_time_ms(since) if since else None
    except (ValueError, OverflowError) as exc:
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
async def stats(request: Request):
    return _engine(request).scheduler.stats()


# -- capabilities beyond the dev server ------------------------------------------------------
def _function_slug(engine, function: str | None) -> str | None:
    if not function:
        return None
    fn = engine.find_function(function)
    if fn is None:
        raise LookupError(f"function {function!r} not found")
    return fn.slug


def _window(since, until) -> tuple[int | None, int | None]:
    return (_time(since, "since") if since else None, _time(until, "until") if until else None)


@router.get("/stats/steps")
async def step_stats(request: Request, function: str | None = None, key: str | None = None):
    """Executing steps over engine time: peak, peaks per key value, series."""
    engine = _engine(request)
    try:
        slug = _function_slug(engine, function)
        if key and len(key) > EXPRESSION_MAX_CHARS:
            raise expressions.ExpressionError(f"key: longer than {EXPRESSION_MAX_CHARS} "
                                              "characters")
        if key:
            expressions.compile_expression(key)
    except LookupError as exc:
        return _error(str(exc), 404)
    except expressions.ExpressionError as exc:
        return _error(str(exc))
    return engine.step_stats.summary(slug, key)


@router.get("/tier")
async def get_tier(request: Request):
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
    return await get_tier(request)


@router.get("/executions")
async def count_executions(request: Request, function: str | None = None,
                           since: str | None = None,
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
        if not isinstance(body.get("statuses") or [], list):
            raise ValueError('"statuses" must be a list of run statuses')
        if not isinstance(body.get("error_contains") or "", str):
            raise ValueError('"error_contains" must be a string')
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
