"""GraphQL at ``/v0/gql`` (ariadne, schema in schema.graphql): runs, traces, outputs,
functions, events, and the cancel / invoke / rerun mutations, shaped like the dev server's.

A run's trace is a root span with one child span per step, named after the user step id;
a step retried more than once has ``Attempt N`` children. Outputs are fetched separately by
``outputID`` (``<run id>`` for the run, ``<run id>:<step hash>`` for a step,
``<run id>:<step hash>:<attempt>`` for a failed attempt, whose output is its error).

Bounds (``limits.py``): a query may nest ``GRAPHQL_MAX_DEPTH`` selections and select
``GRAPHQL_MAX_COST`` fields, fragments expanded (ariadne's cost validator and a depth rule
here); past either it is refused with 400 before anything runs. The request body is read
with ``bodies.parse_json`` first, so NaN or 64-bit overflow in variables never reaches an
invoke. There is no explorer page (it loads its scripts from a public CDN): GET answers
405; the schema is ``schema.graphql`` (and introspection).
"""

from __future__ import annotations

import json
from pathlib import Path

from ariadne import MutationType, ObjectType, QueryType, UnionType, make_executable_schema
from ariadne.asgi import GraphQL
from ariadne.explorer import ExplorerHttp405
from ariadne.validation import cost_validator
from graphql import (FieldNode, FragmentSpreadNode, GraphQLError, InlineFragmentNode,
                     ValidationRule)
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from . import expressions
from .bodies import JSONInputError, parse_json
from .engine import EngineError
from .limits import EXPRESSION_MAX_CHARS, GRAPHQL_MAX_COST, GRAPHQL_MAX_DEPTH
from .ids import parse_time_ms, rfc3339
from .models import GQL_RUN_STATUS, TERMINAL, Run, Step
from .views import ordered_steps

SCHEMA = (Path(__file__).with_name("schema.graphql")).read_text()
RUN_SPAN_STATUS = {"Scheduled": "QUEUED", "Running": "RUNNING", "Completed": "COMPLETED",
                   "Failed": "FAILED", "Cancelled": "CANCELLED", "Skipped": "SKIPPED"}

query, mutation = QueryType(), MutationType()
run_type, span_type, app_type = ObjectType("FunctionRunV2"), ObjectType("RunTraceSpan"), ObjectType("App")
event_type = ObjectType("EventV2")
step_info = UnionType("StepInfo")


def _engine(info):
    return info.context["request"].app.state.engine


def _json(value) -> str:
    return json.dumps(value)


# -- views ---------------------------------------------------------------------------------
def app_view(engine, name: str) -> dict:
    app = engine.store.apps.get(name)
    fns = [f for f in engine.store.functions.values() if f.app == name]
    lang, _, version = (app.sdk if app else "").partition(":")
    return {"id": app.id if app else "", "externalID": name, "name": name,
            "sdkLanguage": lang or "py", "sdkVersion": version, "framework": app.framework if app else None,
            "url": app.url if app else None, "functionCount": len(fns), "connected": True,
            "error": app.error if app else None, "checksum": app.checksum if app else None,
            "_fns": fns, "_engine": engine}


def function_view(engine, fn) -> dict:
    triggers = [{"type": "CRON" if t.get("cron") else "EVENT",
                 "value": t.get("cron") or t.get("event"), "condition": t.get("expression")}
                for t in fn.triggers]
    limits = [c.get("limit", 0) for c in fn.config.get("concurrency") or []]
    return {"id": fn.id, "name": fn.name, "slug": fn.slug, "config": _json(fn.config),
            "url": fn.url, "appID": engine.store.apps[fn.app].id if fn.app in engine.store.apps else "",
            "app": app_view(engine, fn.app), "triggers": triggers,
            "concurrency": min(limits) if limits else 0}


def run_view(engine, run: Run) -> dict:
    fn = engine.store.functions.get(run.fn_slug)
    return {"id": run.run_id, "appID": engine.store.apps[run.app].id if run.app in engine.store.apps else "",
            "app": app_view(engine, run.app), "functionID": run.fn_id,
            "function": function_view(engine, fn) if fn else
            {"id": run.fn_id, "name": run.fn_slug, "slug": run.fn_slug, "config": "{}", "url": "",
             "appID": "", "app": app_view(engine, run.app), "triggers": [], "concurrency": 0},
            "traceID": run.run_id, "queuedAt": rfc3339(run.queued_at),
            "startedAt": rfc3339(run.started_at), "endedAt": rfc3339(run.ended_at),
            "status": GQL_RUN_STATUS[run.status], "sourceID": None, "triggerIDs": run.event_ids,
            "isBatch": bool(run.batch_id), "batchCreatedAt": rfc3339(run.queued_at) if run.batch_id else None,
            "cronSchedule": run.cron, "output": None if run.output is None and run.status != "Completed"
            else _json(run.output), "eventName": run.events[0].get("name") if run.events else None,
            "hasAI": any(s.op == "AI_GATEWAY" for s in run.steps.values()), "_run": run}


def trace_view(engine, run: Run) -> dict:
    finished = run.status in TERMINAL
    children = [step_span(run, s) for s in ordered_steps(run)]
    end = run.ended_at
    return {"appID": engine.store.apps[run.app].id if run.app in engine.store.apps else "",
            "functionID": run.fn_id, "runID": run.run_id, "spanID": run.run_id,
            "traceID": run.run_id, "name": "Run" if finished else run.fn_slug,
            "status": RUN_SPAN_STATUS[run.status], "attempts": 1,
            "duration": (end - run.started_at) if end and run.started_at else None,
            "queuedAt": rfc3339(run.queued_at), "startedAt": rfc3339(run.started_at),
            "endedAt": rfc3339(end), "childrenSpans": children, "stepOp": None, "stepID": None,
            "stepType": "FUNCTION", "outputID": run.run_id if finished else None, "isRoot": True,
            "parentSpanID": None, "stepInfo": None, "memoized": False}


def step_span(run: Run, step: Step) -> dict:
    attempts = step.attempts
    children = []
    if len(attempts) > 1:
        children = [{"appID": "", "functionID": run.fn_id, "runID": run.run_id,
                     "spanID": f"{step.hash}:{a['attempt']}", "traceID": run.run_id,
                     "name": f"Attempt {a['attempt']}", "status": a["status"],
                     "attempts": a["attempt"] + 1, "queuedAt": rfc3339(a["started_at"] or step.queued_at),
                     "startedAt": rfc3339(a["started_at"]), "endedAt": rfc3339(a["ended_at"]),
                     "duration": (a["ended_at"] - a["started_at"]) if a["ended_at"] and a["started_at"] else None,
                     "childrenSpans": [], "stepOp": step.op, "stepID": step.hash,
                     "stepType": step.op, "isRoot": False,
                     "outputID": f"{run.run_id}:{step.hash}:{a['attempt']}" if a.get("error")
                     else None,
                     "parentSpanID": step.hash, "stepInfo": None, "memoized": False}
                    for a in attempts]
    info = None
    typename = step.info.get("type")
    if typename in ("SleepStepInfo", "WaitForEventStepInfo", "InvokeStepInfo", "RunStepInfo"):
        info = dict(step.info, __typename=typename)
    elif step.op == "RUN":
        info = {"__typename": "RunStepInfo", "type": "step.run"}
    duration = (step.ended_at - step.started_at) if step.ended_at and step.started_at else None
    return {"appID": "", "functionID": run.fn_id, "runID": run.run_id, "spanID": step.hash,
            "traceID": run.run_id, "name": step.name, "status": step.status,
            "attempts": max(1, len(attempts)), "duration": duration,
            "queuedAt": rfc3339(step.queued_at), "startedAt": rfc3339(step.started_at),
            "endedAt": rfc3339(step.ended_at), "childrenSpans": children, "stepOp": step.op,
            "stepID": step.hash, "stepType": step.op,
            "outputID": f"{run.run_id}:{step.hash}" if step.has_output or step.attempts else None,
            "isRoot": False, "parentSpanID": run.run_id, "stepInfo": info,
            "memoized": step.memoized}


@step_info.type_resolver
def _resolve_step_info(obj, *_):
    return obj.get("__typename")


@app_type.field("functions")
def _app_functions(obj, info):
    return [function_view(obj["_engine"], f) for f in obj["_fns"]]


@run_type.field("trace")
def _run_trace(obj, info, preview=None):
    return trace_view(_engine(info), obj["_run"])


@event_type.field("runs")
def _event_runs(obj, info):
    engine = _engine(info)
    return [run_view(engine, engine.store.runs[r])
            for r in engine.store.runs_by_event.get(obj["id"], []) if r in engine.store.runs]


# -- queries -------------------------------------------------------------------------------
def _get_run(engine, run_id: str) -> Run:
    run = engine.store.runs.get(run_id)
    if run is None:
        raise GraphQLError(f"run {run_id} not found")
    return run


@query.field("apps")
def _apps(_, info):
    engine = _engine(info)
    return [app_view(engine, name) for name in engine.store.apps]


@query.field("functions")
def _functions(_, info):
    engine = _engine(info)
    return [function_view(engine, f) for f in engine.store.functions.values()]


@query.field("functionBySlug")
def _function_by_slug(_, info, query):
    engine = _engine(info)
    fn = engine.store.functions.get(query["functionSlug"])
    return function_view(engine, fn) if fn else None


@query.field("run")
def _run(_, info, runID):
    engine = _engine(info)
    run = engine.store.runs.get(runID)
    return run_view(engine, run) if run else None


@query.field("runTrace")
def _run_trace_q(_, info, runID):
    engine = _engine(info)
    run = engine.store.runs.get(runID)
    if run is None:
        raise GraphQLError(f"error retrieving trace: no root span found for run {runID}")
    return trace_view(engine, run)


@query.field("runTraceSpanOutputByID")
def _span_output(_, info, outputID):
    engine = _engine(info)
    run_id, _, step_id = outputID.partition(":")
    step_id, _, attempt = step_id.partition(":")
    run = _get_run(engine, run_id)
    if not step_id:
        if run.status == "Failed":
            out = run.output if isinstance(run.output, dict) else {"message": str(run.output)}
            return {"input": _json(run.events), "data": None,
                    "error": {"message": out.get("message", ""), "name": out.get("name"),
                              "stack": out.get("stack")}}
        return {"input": _json(run.events), "data": _json(run.output), "error": None}
    step = run.steps.get(step_id)
    if step is None:
        raise GraphQLError(f"no output {outputID}")
    if attempt:  # one failed attempt of a retried step: its error
        err = next((a.get("error") for a in step.attempts if str(a["attempt"]) == attempt
                    and a.get("error")), None)
        if err is None:
            raise GraphQLError(f"no output {outputID}")
        return {"input": None, "data": None,
                "error": {"message": err.get("message", ""), "name": err.get("name"),
                          "stack": err.get("stack")}}
    value = step.output
    if isinstance(value, dict) and "error" in value and set(value) <= {"error", "data"}:
        err = value["error"] or {}
        return {"input": None, "data": None,
                "error": {"message": err.get("message", ""), "name": err.get("name"),
                          "stack": err.get("stack")}}
    if isinstance(value, dict) and set(value) == {"data"}:
        value = value["data"]
    last_error = step.info.get("lastError") if not step.has_output else None
    if last_error:
        return {"input": None, "data": None,
                "error": {"message": last_error.get("message", ""), "name": last_error.get("name"),
                          "stack": last_error.get("stack")}}
    return {"input": None, "data": _json(value), "error": None}


@query.field("runTrigger")
def _run_trigger(_, info, runID):
    engine = _engine(info)
    run = _get_run(engine, runID)
    return {"eventName": run.events[0].get("name") if run.events else None,
            "IDs": run.event_ids, "payloads": [_json(e) for e in run.events],
            "timestamp": rfc3339(run.queued_at), "isBatch": bool(run.batch_id),
            "batchID": run.batch_id, "cron": run.cron}


@query.field("runs")
def _runs(_, info, filter, first=40, after=None, orderBy=None):
    engine = _engine(info)
    field = "QUEUED_AT"
    desc = True
    if orderBy:
        field = orderBy[0]["field"]
        desc = orderBy[0]["direction"] == "DESC"
    attr = {"QUEUED_AT": "queued_at", "STARTED_AT": "started_at", "ENDED_AT": "ended_at"}[field]
    time_attr = {"QUEUED_AT": "queued_at", "STARTED_AT": "started_at",
                 "ENDED_AT": "ended_at"}[filter.get("timeField") or "QUEUED_AT"]
    start = parse_time_ms(filter["from"])
    until = parse_time_ms(filter["until"]) if filter.get("until") else None
    statuses = set(filter.get("status") or [])
    fn_ids = set(filter.get("functionIDs") or [])
    app_ids = set(filter.get("appIDs") or [])
    cel = filter.get("query")
    if cel and len(cel) > EXPRESSION_MAX_CHARS:
        raise GraphQLError(f"query: expression longer than {EXPRESSION_MAX_CHARS} characters")
    if cel:
        try:
            expressions.compile_expression(cel)
        except expressions.ExpressionError as exc:
            raise GraphQLError(str(exc))
    selected = []
    for run in engine.store.runs.values():
        t = getattr(run, time_attr) or run.queued_at
        if t < start or (until is not None and t > until):
            continue
        if statuses and GQL_RUN_STATUS[run.status] not in statuses:
            continue
        if fn_ids and run.fn_id not in fn_ids:
            continue
        if app_ids and (engine.store.apps.get(run.app) is None
                        or engine.store.apps[run.app].id not in app_ids):
            continue
        if cel:
            try:
                if not expressions.truthy(cel, run.event):
                    continue
            except expressions.ExpressionError:
                continue
        selected.append(run)
    selected.sort(key=lambda r: (getattr(r, attr) or 0, r.run_id), reverse=desc)
    if after:
        ids = [r.run_id for r in selected]
        selected = selected[ids.index(after) + 1:] if after in ids else []
    page = selected[:max(0, first or 40)]
    return {"edges": [{"node": run_view(engine, r), "cursor": r.run_id} for r in page],
            "pageInfo": {"hasNextPage": len(selected) > len(page), "hasPreviousPage": bool(after),
                         "startCursor": page[0].run_id if page else None,
                         "endCursor": page[-1].run_id if page else None},
            "totalCount": len(selected)}


@query.field("eventsV2")
def _events(_, info, filter, first=40, after=None):
    engine = _engine(info)
    start = parse_time_ms(filter["from"])
    until = parse_time_ms(filter["until"]) if filter.get("until") else None
    names = set(filter.get("eventNames") or [])
    internal = filter.get("includeInternalEvents")
    out = []
    for e in sorted(engine.store.events.values(), key=lambda e: e.internal_id, reverse=True):
        if e.received_at < start or (until is not None and e.received_at > until):
            continue
        if not internal and e.name.startswith("inngest/"):
            continue
        if names and e.name not in names:
            continue
        if after and e.internal_id >= after:
            continue
        out.append(e)
    page = out[:first or 40]
    return {"edges": [{"cursor": e.internal_id, "node": {
        "id": e.internal_id, "idempotencyKey": e.id, "name": e.name,
        "occurredAt": rfc3339(e.ts), "receivedAt": rfc3339(e.received_at),
        "raw": _json(e.wire())}} for e in page],
        "pageInfo": {"hasNextPage": len(out) > len(page), "hasPreviousPage": bool(after),
                     "startCursor": page[0].internal_id if page else None,
                     "endCursor": page[-1].internal_id if page else None},
        "totalCount": len(out)}


# -- mutations -----------------------------------------------------------------------------
@mutation.field("cancelRun")
def _cancel_run(_, info, runID):
    engine = _engine(info)
    try:
        run = engine.cancel(runID, "cancelled from GraphQL")
    except EngineError as exc:
        raise GraphQLError(str(exc))
    return {"id": run.run_id, "status": GQL_RUN_STATUS[run.status]}


@mutation.field("invokeFunction")
def _invoke(_, info, functionSlug, data=None, user=None, envID=None):
    try:
        _engine(info).invoke(functionSlug, data, user)
    except EngineError as exc:
        raise GraphQLError(str(exc))
    return True


@mutation.field("rerun")
def _rerun(_, info, runID, fromStep=None):
    try:
        run = _engine(info).rerun(runID, (fromStep or {}).get("stepID"))
    except EngineError as exc:
        raise GraphQLError(str(exc))
    return run.run_id


class DepthLimit(ValidationRule):
    """Refuse an operation nested deeper than GRAPHQL_MAX_DEPTH, fragments expanded."""

    def enter_operation_definition(self, node, *_args):
        depth = self._depth(node.selection_set, 0, frozenset(), {})
        if depth > GRAPHQL_MAX_DEPTH:
            self.report_error(GraphQLError(
                f"the query nests deeper than {GRAPHQL_MAX_DEPTH} levels (fragments "
                "expanded); that is the limit", node))

    def _depth(self, selection_set, level: int, visiting: frozenset, memo: dict) -> int:
        if selection_set is None or level > GRAPHQL_MAX_DEPTH:
            return level
        deepest = level
        for sel in selection_set.selections:
            if isinstance(sel, FieldNode):
                below = sel.selection_set
                deepest = max(deepest, self._depth(below, level + 1, visiting, memo)
                              if below else level + 1)
            elif isinstance(sel, InlineFragmentNode):
                deepest = max(deepest, self._depth(sel.selection_set, level, visiting, memo))
            elif isinstance(sel, FragmentSpreadNode):
                name = sel.name.value
                fragment = self.context.get_fragment(name)
                if fragment is None or name in visiting:
                    continue                # unknown or cyclic: graphql-core reports those
                if (name, level) not in memo:
                    memo[(name, level)] = self._depth(fragment.selection_set, level,
                                                      visiting | {name}, memo)
                deepest = max(deepest, memo[(name, level)])
        return deepest


class StrictBodyGraphQL:
    """The GraphQL ASGI app behind a strict JSON read of the request body."""

    def __init__(self, app: GraphQL) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return                       # the client went away
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        content_type = dict(scope.get("headers") or {}).get(b"content-type", b"")
        if b"json" in content_type:
            try:
                parse_json(body)
            except JSONInputError as exc:
                await JSONResponse({"errors": [{"message": f"invalid request body: {exc}"}],
                                    "data": None}, status_code=400)(scope, receive, send)
                return
        sent = False

        async def replay():
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def graphql_app(engine) -> StrictBodyGraphQL:
    schema = make_executable_schema(SCHEMA, query, mutation, run_type, span_type, app_type,
                                    event_type, step_info)
    return StrictBodyGraphQL(GraphQL(schema, debug=False, validation_rules=_bounds,
                                     explorer=ExplorerHttp405()))


def _bounds(_context, _document, data: dict) -> list:
    """Per request: the cost validator reads argument values, so it needs the variables."""
    variables = data.get("variables") if isinstance(data.get("variables"), dict) else None
    return [cost_validator(maximum_cost=GRAPHQL_MAX_COST, default_cost=1,
                           variables=variables), DepthLimit]
