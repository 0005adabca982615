"""REST v1 (and the two v0 routes the SDK uses for large payloads), with the real shapes.

As on the dev server, GET errors come back as HTTP 200 with ``status`` in the body (its
cache layer drops the handler's status code); ``DELETE /v1/runs/{id}`` and
``/v1/cancellations`` return real status codes. Unlike the dev server, bulk cancellation
works and GET responses are never cached.
"""

from __future__ import annotations

from datetime import datetime, timezone

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from . import expressions
from .bodies import JSONInputError, parse_json
from .ids import DEV_ACCOUNT_ID, DEV_ENV_ID, is_ulid, new_ulid, parse_time_ms, rfc3339
from .limits import EXPRESSION_MAX_CHARS
from .models import TERMINAL
from .views import event_record, run_record

router = APIRouter()


def _meta() -> dict:
    return {"fetched_at": datetime.now(timezone.utc).isoformat()}


def ok(data) -> JSONResponse:
    return JSONResponse({"data": data, "metadata": _meta()})


def soft_error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message, "data": None, "status": status})


def hard_error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message, "data": None, "status": status}, status_code=status)


def _engine(request: Request):
    return request.app.state.engine


@router.get("/v1/events")
async def list_events(request: Request, limit: int = 20, cursor: str | None = None,
                received_after: str | None = None, received_before: str | None = None,
                name: str | None = None):
    engine = _engine(request)
    limit = max(1, min(limit, 51))
    now = engine.now()
    try:
        after = parse_time_ms(received_after) if received_after else now - 3_600_000
        before = parse_time_ms(received_before) if received_before else None
    except (ValueError, OverflowError) as exc:
        return soft_error(f"invalid time: {exc}", 400)
    out = []
    for event in sorted(engine.store.events.values(), key=lambda e: e.internal_id, reverse=True):
        if event.name.lower().startswith("inngest/"):
            continue
        if cursor and event.internal_id >= cursor:
            continue
        if event.received_at < after or (before is not None and event.received_at > before):
            continue
        if name and event.name != name:
            continue
        out.append(event_record(event))
        if len(out) >= limit:
            break
    return ok(out)


@router.get("/v1/events/{event_id}")
async def get_event(request: Request, event_id: str):
    event = _engine(request).store.events.get(event_id)
    if event is None:
        return soft_error("Event not found", 404)
    return ok(event_record(event))


@router.get("/v1/events/{event_id}/runs")
async def event_runs(request: Request, event_id: str):
    store = _engine(request).store
    if event_id not in store.events:
        return soft_error("Event not found", 404)
    runs = [store.runs[r] for r in store.runs_by_event.get(event_id, []) if r in store.runs]
    return ok([run_record(r, with_output=False) for r in runs])


@router.get("/v1/runs/{run_id}")
async def get_run(request: Request, run_id: str):
    if not is_ulid(run_id):
        return soft_error(f"Invalid run ID: {run_id}", 400)
    run = _engine(request).store.runs.get(run_id)
    if run is None:
        return soft_error(f"Unable to load function run: run {run_id} not found", 500)
    return ok(run_record(run))


@router.delete("/v1/runs/{run_id}")
async def delete_run(request: Request, run_id: str):
    if not is_ulid(run_id):
        return hard_error(f"Invalid run ID: {run_id}", 400)
    engine = _engine(request)
    run = engine.store.runs.get(run_id)
    if run is None:
        return hard_error(f"run {run_id} not found", 404)
    if run.status in TERMINAL:
        return hard_error(f"run {run_id} already finished ({run.status})", 409)
    engine.cancel(run_id, "cancelled through the REST API")
    return Response(status_code=200)


@router.get("/v1/runs/{run_id}/jobs")
async def run_jobs(request: Request, run_id: str):
    engine = _engine(request)
    if run_id not in engine.store.runs:
        return soft_error(f"Unable to load function run: run {run_id} not found", 500)
    items = sorted((i for i in engine.store.items.values() if i.run_id == run_id),
                   key=lambda i: i.at)[:10]
    kinds = {"call": "edge", "sleep": "sleep", "wait_timeout": "pause",
             "invoke_timeout": "pause"}
    return ok([{"JobID": i.id, "at": rfc3339(i.at), "position": n,
                "kind": kinds.get(i.kind, i.kind), "attempt": i.attempt,
                "Raw": {"maxAtts": engine.store.runs[run_id].max_attempts,
                        "payload": {"edge": {"incoming": "step",
                                             "outgoing": i.target or "step"}}}}
               for n, i in enumerate(items)])


@router.get("/v1/apps/{app_name}/functions")
async def app_functions(request: Request, app_name: str):
    engine = _engine(request)
    app = engine.store.apps.get(app_name)
    fns = [f for f in engine.store.functions.values() if f.app == app_name]
    return JSONResponse([{"internal_id": f.id, "env_id": DEV_ENV_ID,
                          "app_id": app.id if app else None, "id": f.slug, "name": f.name,
                          "config": f.config, "created_at": rfc3339(f.created_at),
                          "archived_at": None} for f in fns])


# -- bulk cancellation ---------------------------------------------------------------------
@router.post("/v1/cancellations")
async def create_cancellation(request: Request):
    engine = _engine(request)
    try:
        body = parse_json(await request.body())
    except JSONInputError as exc:
        return hard_error(f"invalid JSON body: {exc}", 400)
    if not isinstance(body, dict):
        return hard_error("body must be a JSON object", 400)
    missing = [k for k in ("app_id", "function_id", "started_before") if not body.get(k)]
    if missing:
        return hard_error(f"missing field(s): {', '.join(missing)}", 400)
    wrong = [k for k in ("app_id", "function_id", "started_before", "started_after", "if",
                         "name") if body.get(k) is not None and not isinstance(body[k], str)]
    if wrong:
        return hard_error(f"field(s) must be strings: {', '.join(wrong)}", 400)
    try:
        before = parse_time_ms(body["started_before"])
        after = parse_time_ms(body["started_after"]) if body.get("started_after") else None
    except (ValueError, OverflowError) as exc:
        return hard_error(f"invalid time: {exc}", 400)
    if before > engine.now() + 5000:
        return hard_error("started_before cannot be more than 5 seconds in the future", 400)
    expr = body.get("if")
    if expr and len(expr) > EXPRESSION_MAX_CHARS:
        return hard_error(f"if: expression longer than {EXPRESSION_MAX_CHARS} characters", 400)
    if expr:
        try:
            expressions.compile_expression(expr)
        except expressions.ExpressionError as exc:
            return hard_error(str(exc), 400)
    fn = engine.find_function(body["function_id"])
    app = engine.store.apps.get(fn.app) if fn else None
    if fn is None or body["app_id"] not in (fn.app, app.id if app else None):
        return hard_error(f"function {body['function_id']} not found in app {body['app_id']}", 404)
    cancelled = []
    for run in list(engine.store.runs.values()):
        if run.fn_slug != fn.slug or run.status in TERMINAL:
            continue
        started = run.queued_at
        if started >= before or (after is not None and started < after):
            continue
        if expr:
            try:
                if not expressions.truthy(expr, run.event):
                    continue
            except expressions.ExpressionError:
                continue
        engine.cancel(run.run_id, "bulk cancellation")
        cancelled.append(run.run_id)
    record = {"created_at": rfc3339(engine.now()), "name": body.get("name"),
              "id": new_ulid(engine.now()), "account_id": DEV_ACCOUNT_ID,
              "environment_id": DEV_ENV_ID, "app_id": body["app_id"],
              "function_internal_id": fn.id, "function_id": fn.slug,
              "started_after": body.get("started_after"),
              "started_before": body["started_before"], "if": expr, "kind": "bulk_run",
              "cause": "api", "cancelled_run_ids": cancelled}
    engine.store.meta.setdefault("cancellations", [])
    engine.store.set_meta("cancellations", engine.store.meta["cancellations"] + [record])
    return JSONResponse({"data": record, "metadata": _meta()})


@router.get("/v1/cancellations")
async def list_cancellations(request: Request):
    return ok(_engine(request).store.meta.get("cancellations", []))


@router.delete("/v1/cancellations/{cancellation_id}")
async def delete_cancellation(request: Request, cancellation_id: str):
    engine = _engine(request)
    records = engine.store.meta.get("cancellations", [])
    kept = [r for r in records if r["id"] != cancellation_id]
    if len(kept) == len(records):
        return hard_error(f"cancellation {cancellation_id} not found", 404)
    engine.store.set_meta("cancellations", kept)
    return ok({"id": cancellation_id, "deleted": True})


# -- v0: state for large payloads -----------------------------------------------------------
@router.get("/v0/runs/{run_id}/actions")
async def run_actions(request: Request, run_id: str):
    return _v0(request, run_id, lambda r: r.memo)


@router.get("/v0/runs/{run_id}/batch")
async def run_batch(request: Request, run_id: str):
    return _v0(request, run_id, lambda r: r.events)


def _v0(request: Request, run_id: str, pick):
    if not is_ulid(run_id):
        return hard_error(f"invalid run ID: {run_id}", 400)
    run = _engine(request).store.runs.get(run_id)
    if run is None or run.status in TERMINAL:
        return hard_error(f"runtime state is no longer available for runID: {run_id}", 410)
    return JSONResponse(pick(run))
