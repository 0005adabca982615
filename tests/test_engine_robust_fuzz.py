"""Issue #9: a bounded fuzz (hypothesis) of what clients send: events, registrations,
GraphQL and the lab API. No answer may be a 5xx, the engine must answer /health after each
request, and afterwards a normal event must still complete a run through the real SDK.

Values include what broke the engine before: NaN and Infinity, numbers past 64 bits, lone
surrogates, deep nesting, wrong types at every path of a valid registration. Every URL the
engine could call stays on loopback. Examples are few and there is no deadline, so the suite
stays fast on 2 cores; a failure prints the example that caused it.
"""

from __future__ import annotations

import copy
import json
import math
from urllib.parse import quote

import httpx
import inngest
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine_helpers import make_client, send, serving, wait_run_for_event

FN_URL = "http://127.0.0.1:9/api/inngest?fnId=fuzz-target&stepId=step"
FUZZ = settings(max_examples=200, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

_text = st.text(alphabet=st.one_of(
    st.characters(), st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF,
                                   exclude_categories=())), max_size=8)
# The values that broke the engine before, often enough to matter in a few hundred examples.
_nasty = st.sampled_from([math.nan, math.inf, -math.inf, 2 ** 63, -(2 ** 63) - 1, 10 ** 30,
                          "\ud800", "x\udfffx", "\x00", ""])
_leaf = st.one_of(_nasty, st.none(), st.booleans(), st.integers(-(2 ** 70), 2 ** 70),
                  st.floats(allow_nan=True, allow_infinity=True), _text)
json_values = st.recursive(_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(_text, inner, max_size=4)), max_leaves=12)


def _deep(depth: int) -> object:
    value: object = 1
    for n in range(depth):
        value = [value] if n % 2 else {"a": value}
    return value


deep_values = st.integers(1, 200).map(_deep)
any_value = st.one_of(json_values, deep_values)


def encode(value) -> bytes:
    return json.dumps(value, allow_nan=True).encode()   # ensure_ascii: surrogates as \\udxxx


@pytest.fixture(scope="module")
def http():
    """One connection pool for the module: a new httpx client per request costs ~50 ms."""
    with httpx.Client(timeout=30) as client:
        yield client


def assert_handled(http, engine, response: httpx.Response) -> None:
    """No 5xx, and the reads that stored garbage used to break still answer."""
    assert response.status_code < 500, (response.status_code, response.text[:500])
    assert http.get(engine.url + "/health").status_code == 200
    events = http.get(engine.url + "/v1/events", params={"limit": 5})
    assert events.status_code == 200 and "data" in events.json(), events.text[:300]


def post(http, engine, path: str, content: bytes) -> httpx.Response:
    return http.post(engine.url + path, content=content,
                     headers={"content-type": "application/json"})


# -- events ------------------------------------------------------------------------------
# Mostly well-formed events, so that the strange values get past the name check and reach
# storage; the rest have any name, or none.
_names = st.one_of(st.just("fuzz/event"), st.just("fuzz/other"),
                   st.sampled_from(["inngest/x", ""]), _text, any_value)
_event = st.one_of(
    st.fixed_dictionaries({"name": st.just("fuzz/event"), "data": st.dictionaries(
        _text, any_value, max_size=4)}, optional={"id": st.one_of(_text, any_value),
                                                  "user": any_value, "v": any_value}),
    st.fixed_dictionaries({}, optional={
        "name": _names, "data": any_value, "id": st.one_of(_text, any_value),
        "user": any_value, "ts": st.one_of(st.integers(-(2 ** 70), 2 ** 70), st.floats(),
                                           any_value), "v": any_value}))
event_bodies = st.one_of(
    _event.map(encode), st.lists(_event, max_size=5).map(encode), any_value.map(encode),
    st.binary(max_size=64))


@FUZZ
@given(body=event_bodies)
def test_fuzz_events(http, engine, body):
    assert_handled(http, engine, post(http, engine, "/e/fuzz", body))


# -- registrations -----------------------------------------------------------------------
VALID_FN = {"id": "fuzz-target", "name": "target", "triggers": [{"event": "fuzz/never-sent"}],
            "steps": {"step": {"id": "step", "name": "step", "retries": {"attempts": 1},
                               "runtime": {"type": "http", "url": FN_URL}}},
            "concurrency": [{"limit": 2, "key": "event.data.k"}],
            "throttle": {"limit": 5, "period": "1m", "burst": 1},
            "debounce": {"period": "5s"}, "timeouts": {"finish": "1h"},
            "cancel": [{"event": "fuzz/cancel", "timeout": "1h"}]}
VALID_APP = {"appname": "fuzz", "url": "http://127.0.0.1:9/api/inngest", "sdk": "py:v0.5.19",
             "framework": "fast_api", "v": "0.1", "functions": [VALID_FN]}


def _paths(doc, prefix=()):
    """Every path in the document, except the step URL (it must stay on loopback)."""
    yield prefix
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key != "url":
                yield from _paths(value, prefix + (key,))
    elif isinstance(doc, list):
        for n, value in enumerate(doc):
            yield from _paths(value, prefix + (n,))


PATHS = [p for p in _paths(VALID_APP) if p]


@st.composite
def registrations(draw):
    doc = copy.deepcopy(VALID_APP)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        target = doc
        try:
            for part in path[:-1]:
                target = target[part]
            if draw(st.booleans()):
                target[path[-1]] = draw(any_value)
            elif isinstance(target, dict):
                target[draw(_text)] = draw(any_value)
        except (KeyError, IndexError, TypeError):
            pass                        # an earlier mutation replaced that branch
    return encode(doc)


@FUZZ
@given(body=st.one_of(registrations(), any_value.map(encode)))
def test_fuzz_registrations(http, engine, body):
    assert_handled(http, engine, post(http, engine, "/fn/register", body))


# -- GraphQL -----------------------------------------------------------------------------
FIELDS = ["apps { id name functions { slug } }", "functions { id slug triggers { value } }",
          'run(runID: $id) { id status output trace { name childrenSpans { name } } }',
          "runTrace(runID: $id) { name }", "runTrigger(runID: $id) { eventName }",
          "runTraceSpanOutputByID(outputID: $id) { data error { message } }",
          'runs(first: $n, filter: {from: $from, query: $q}) { totalCount edges { cursor } }',
          "eventsV2(first: $n, filter: {from: $from}) { totalCount }",
          "functionBySlug(query: {functionSlug: $id}) { id }"]
MUTATIONS = ["cancelRun(runID: $id) { id }", "rerun(runID: $id)",
             "invokeFunction(functionSlug: $id, data: $data)"]


@st.composite
def graphql_bodies(draw):
    if draw(st.integers(0, 4)) == 0:
        return encode({"query": draw(st.one_of(_text, any_value)),
                       "variables": draw(any_value)})
    kind = draw(st.sampled_from(["query", "mutation"]))
    picked = draw(st.lists(st.sampled_from(FIELDS if kind == "query" else MUTATIONS),
                           min_size=1, max_size=3, unique=True))
    used = " ".join(picked)
    decls = {"$id": "String!", "$n": "Int", "$from": "Time!", "$q": "String", "$data": "Map"}
    header = ", ".join(f"{name}: {typ}" for name, typ in decls.items() if name in used)
    query = f"{kind}({header}) {{ {used} }}" if header else f"{kind} {{ {used} }}"
    variables = {"id": draw(st.one_of(_text, any_value)), "n": draw(any_value),
                 "from": draw(st.one_of(st.just("2026-01-01T00:00:00Z"), _text, any_value)),
                 "q": draw(st.one_of(st.none(), st.just("event.data.x == 1"), _text)),
                 "data": draw(any_value)}
    return encode({"query": query, "variables": variables})


@FUZZ
@given(body=graphql_bodies())
def test_fuzz_graphql(http, engine, body):
    assert_handled(http, engine, post(http, engine, "/v0/gql", body))


# -- the lab API and REST ----------------------------------------------------------------
lab_requests = st.one_of(
    st.tuples(st.just("/lab/v1/clock/advance"), st.one_of(
        st.fixed_dictionaries({}, optional={"seconds": any_value, "duration": any_value,
                                            "to": any_value, "to_next_timer": any_value}),
        any_value)),
    st.tuples(st.just("/lab/v1/clock/auto"), st.fixed_dictionaries(
        {}, optional={"enabled": any_value, "until": any_value})),
    st.tuples(st.just("/lab/v1/chaos"), st.fixed_dictionaries(
        {}, optional={"function": any_value, "step": any_value, "times": any_value,
                      "mode": any_value})),
    st.tuples(st.just("/lab/v1/sync"), st.fixed_dictionaries({"url": st.one_of(
        st.just("http://127.0.0.1:9/api/inngest"), _text, any_value)})),
    st.tuples(st.just("/v1/cancellations"), st.fixed_dictionaries({}, optional={
        "app_id": any_value, "function_id": any_value, "started_before": any_value,
        "started_after": any_value, "if": any_value, "name": any_value})),
)


def _loopback_only(path: str, body) -> bool:
    url = body.get("url") if isinstance(body, dict) else None
    return not (isinstance(url, str) and url.startswith(("http://", "https://"))
                and not url.startswith("http://127.0.0.1:9/"))


@FUZZ
@given(request=lab_requests.filter(lambda r: _loopback_only(*r)))
def test_fuzz_lab_api(http, engine, request):
    path, body = request
    assert_handled(http, engine, post(http, engine, path, encode(body)))


@FUZZ
@given(ref=_text, params=st.dictionaries(
    st.sampled_from(["limit", "cursor", "received_after", "received_before", "name",
                     "function", "status", "since", "event_id"]), st.text(max_size=8),
    max_size=3))
def test_fuzz_reads(http, engine, ref, params):
    seg = quote(ref.encode("utf-8", "surrogatepass"), safe="") or "x"
    for path in (f"/v1/runs/{seg}", f"/v1/runs/{seg}/jobs", f"/v1/events/{seg}",
                 f"/v1/events/{seg}/runs", f"/v0/runs/{seg}/actions", f"/dashboard/{seg}",
                 "/v1/events", "/lab/v1/runs"):
        assert_handled(http, engine, http.get(engine.url + path, params=params))
    assert_handled(http, engine, http.delete(engine.url + f"/v1/runs/{seg}"))


def test_after_the_fuzz_a_normal_event_completes_a_run(engine):
    """Runs last in this module (pytest keeps file order): the engine the fuzz tests used."""
    httpx.delete(engine.url + "/lab/v1/chaos", timeout=10)
    client = make_client(engine, "after-fuzz")

    @client.create_function(fn_id="ok", trigger=inngest.TriggerEvent(event="after-fuzz/go"))
    async def ok(ctx: inngest.Context) -> str:
        return await ctx.step.run("step", lambda: "still works")

    with serving(engine, client, [ok]):
        run = wait_run_for_event(engine, send(engine, "after-fuzz/go"), timeout=60)
        assert run["status"] == "Completed" and run["output"] == "still works", run
