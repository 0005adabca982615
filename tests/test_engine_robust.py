"""Issue #9, findings 1-5: no request makes the engine unusable.

Each test sends what the issue found (or the limit and one past it) over real HTTP, checks
the 4xx and its message, then checks that nothing was stored and that the engine still
answers the requests that broke before (reads, event sends, syncs).
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from mcp import Client

from engine_helpers import send
from lab_support.devserver import limits
from lab_support.host import ThreadedHost
from mcp_helpers import text_of

FN_URL = "http://127.0.0.1:9/api/inngest?fnId={}&stepId=step"


def post(engine, path: str, body) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
    return httpx.post(engine.url + path, content=content, timeout=30,
                      headers={"content-type": "application/json"})


def event_names(engine) -> list[str]:
    r = httpx.get(engine.url + "/v1/events", params={"limit": 51}, timeout=10)
    assert r.status_code == 200 and r.json().get("status") is None, r.text
    return [e["name"] for e in r.json()["data"]]


def function_doc(slug: str, **options) -> dict:
    return {"id": slug, "name": slug, "triggers": [{"event": "robust/go"}],
            "steps": {"step": {"id": "step", "name": "step",
                               "runtime": {"type": "http", "url": FN_URL.format(slug)}}},
            **options}


def register(engine, app: str, *functions: dict) -> httpx.Response:
    return post(engine, "/fn/register", {"appname": app, "url": "http://127.0.0.1:9/api/inngest",
                                         "sdk": "py:v0.5.19", "framework": "fast_api",
                                         "v": "0.1", "functions": list(functions)})


def app_functions(engine, app: str) -> list[str]:
    return [f["id"] for f in httpx.get(f"{engine.url}/v1/apps/{app}/functions").json()]


def still_usable(engine) -> None:
    """What broke in the findings: reads, event sends and syncs all still answer."""
    assert httpx.get(engine.url + "/lab/v1/clock", timeout=10).status_code == 200
    assert httpx.get(engine.url + "/v1/events", timeout=10).status_code == 200
    send(engine, "robust/still-ok")
    ok = register(engine, "robust-healthy", function_doc("robust-healthy-fn"))
    assert ok.status_code == 200, ok.text


# -- events ------------------------------------------------------------------------------
@pytest.mark.parametrize("raw, reason", [
    (b'{"name":"robust/nan","data":{"x":NaN}}', "NaN"),
    (b'{"name":"robust/inf","data":{"x":-Infinity}}', "Infinity"),
    (b'{"name":"robust/overflow","data":{"x":1e400}}', "too large"),
    (b'{"name":"robust/surrogate","data":{"x":"\\ud800"}}', "surrogate"),
    (b'{"name":"robust/surrogate-key","data":{"\\udfff":1}}', "surrogate"),
    (b'{"name":"robust/bigint","data":{"x":9223372036854775808}}', "64 bits"),
    (b'{"name":"robust/ts","ts":1.7e12}', "integer"),
])
def test_events_that_poisoned_reads_are_refused(engine, raw, reason):
    r = post(engine, "/e/key", raw)
    assert r.status_code == 400 and reason in r.json()["error"], r.text
    assert json.loads(raw)["name"] not in event_names(engine)
    still_usable(engine)


def test_one_bad_event_stores_none_of_the_request(engine):
    r = post(engine, "/e/key", b'[{"name":"robust/first"},{"name":"robust/second","ts":NaN}]')
    assert r.status_code == 400 and r.json()["ids"] == []
    assert "robust/first" not in event_names(engine)


def test_json_depth_limit(engine):
    def nested(depth_of_data: int) -> bytes:
        # The event object is level 1 and its data level 2: data holds the rest.
        inner = '{"leaf":1}'
        for _ in range(depth_of_data - 2):
            inner = '{"a":' + inner + "}"
        return ('{"name":"robust/deep","data":' + inner + "}").encode()
    assert post(engine, "/e/key", nested(limits.JSON_MAX_DEPTH)).status_code == 200
    too_deep = post(engine, "/e/key", nested(limits.JSON_MAX_DEPTH + 1))
    assert too_deep.status_code == 400 and "nested deeper" in too_deep.json()["error"]
    ten_thousand = post(engine, "/e/key", nested(10_000))
    assert ten_thousand.status_code == 400 and "nested deeper" in ten_thousand.json()["error"]
    still_usable(engine)


def test_integer_limit_is_64_bits(engine):
    assert post(engine, "/e/key", {"name": "robust/int", "data": {"x": limits.INT_MAX,
                                                                  "y": limits.INT_MIN}}
                ).status_code == 200
    assert post(engine, "/e/key", {"name": "robust/int",
                                   "data": {"y": limits.INT_MIN - 1}}).status_code == 400


def _event_of_size(name: str, size: int) -> dict:
    event = {"name": name, "data": {"s": ""}}
    event["data"]["s"] = "x" * (size - len(json.dumps(event, separators=(",", ":"))))
    return event


def test_event_body_size_limit(engine):
    first = (limits.EVENT_BODY_MAX_BYTES - 3) // 2        # two events and "[,]" fill the cap
    second = limits.EVENT_BODY_MAX_BYTES - 3 - first
    body = json.dumps([_event_of_size("robust/big", first),
                       _event_of_size("robust/big", second)], separators=(",", ":")).encode()
    assert len(body) == limits.EVENT_BODY_MAX_BYTES
    assert post(engine, "/e/key", body).status_code == 200
    over = post(engine, "/e/key", body[:-1] + b' ]')
    assert over.status_code == 413 and over.json()["ids"] == []
    assert str(limits.EVENT_BODY_MAX_BYTES) in over.json()["error"]
    # Without a Content-Length (chunked), the read stops at the cap all the same.
    chunked = httpx.post(engine.url + "/e/key", content=iter([body, b" "]), timeout=30)
    assert chunked.status_code == 413
    still_usable(engine)


def test_one_event_at_its_size_limit(engine):
    event = _event_of_size("robust/one-big", limits.MAX_EVENT_BYTES)
    assert post(engine, "/e/key", event).status_code == 200


def test_event_count_limit(engine):
    events = [{"name": "robust/many"}] * limits.MAX_EVENTS_PER_REQUEST
    assert len(post(engine, "/e/key", events).json()["ids"]) == limits.MAX_EVENTS_PER_REQUEST
    over = post(engine, "/e/key", events + [{"name": "robust/many"}])
    assert over.status_code == 400 and "5000" in over.json()["error"]


# -- the clock ---------------------------------------------------------------------------
@pytest.mark.parametrize("body", [
    {"seconds": 1e15}, {"duration": "3000000d"}, {"to": "9999-12-31T00:00:00Z"},
    b'{"seconds": NaN}', {"seconds": -5}, {"seconds": "5"}, {"seconds": True},
    {"duration": 86400}, {"to": 5}, {"seconds": 1, "duration": "1s"}, {"to_next_timer": 1},
])
def test_clock_advance_bounds_leave_the_clock_untouched(engine, body):
    before = httpx.get(engine.url + "/lab/v1/clock").json()["offset_ms"]
    r = post(engine, "/lab/v1/clock/advance", body)
    assert r.status_code == 400 and r.json()["error"], r.text
    assert httpx.get(engine.url + "/lab/v1/clock").json()["offset_ms"] == before
    still_usable(engine)


def test_clock_stops_at_its_limit(fresh_engine):
    to_limit = post(fresh_engine, "/lab/v1/clock/advance", {"to": "2100-01-01T00:00:00Z"})
    assert to_limit.status_code == 200, to_limit.text
    # Virtual time keeps pace with the wall clock after the jump: a few ms past it by now.
    assert 0 <= to_limit.json()["now_ms"] - limits.CLOCK_MAX_MS < 60_000
    past = post(fresh_engine, "/lab/v1/clock/advance", {"seconds": 0.001})
    assert past.status_code == 400 and "2100-01-01" in past.json()["error"]
    still_usable(fresh_engine)


@pytest.mark.parametrize("body", [{"until": 5}, {"enabled": "yes"}, {"until": "soon"}])
def test_clock_auto_refuses_wrong_types(engine, body):
    r = post(engine, "/lab/v1/clock/auto", body)
    assert r.status_code == 400, r.text
    assert httpx.get(engine.url + "/lab/v1/clock").json()["auto_advance"] is True


# -- registrations -----------------------------------------------------------------------
@pytest.mark.parametrize("fn, path", [
    ({"triggers": "robust/go"}, "functions[0] (robust-typed).triggers"),
    ({"concurrency": [{"limit": "abc"}]}, "functions[0] (robust-typed).concurrency[0].limit"),
    ({"concurrency": [{"limit": 2.0}]}, "concurrency[0].limit"),
    ({"throttle": {"limit": True, "period": "1m"}}, "throttle.limit"),
    ({"rateLimit": {"limit": 1, "period": 60}}, "rateLimit.period"),
    ({"batchEvents": {"maxSize": "5", "timeout": "5s"}}, "batchEvents.maxSize"),
    ({"steps": {"step": {"runtime": {"url": 5}}}}, "steps.step.runtime.url"),
    ({"steps": {"step": {"runtime": {"url": "http://x"}, "retries": {"attempts": "3"}}}},
     "retries.attempts"),
    ({"cancel": {"event": "x"}}, "cancel"),
    ({"debounce": {"period": "1m", "wait": "1s"}}, "debounce.wait"),
])
def test_registration_type_errors_name_the_field(engine, fn, path):
    r = register(engine, "robust-typed", {**function_doc("robust-typed"), **fn})
    assert r.status_code == 400 and path in r.json()["error"], r.text
    assert app_functions(engine, "robust-typed") == []
    still_usable(engine)


@pytest.mark.parametrize("fn, reason", [
    ({"concurrency": [{"limit": 0}]}, "greater than or equal to 1"),
    ({"concurrency": [{"limit": -1}]}, "greater than or equal to 1"),
    ({"throttle": {"limit": 0, "period": "1m"}}, "greater than or equal to 1"),
    ({"throttle": {"limit": 1, "period": "0s"}}, "at least 1s"),
    ({"throttle": {"limit": 1, "period": "8d"}}, "longer than 7d"),
    ({"rateLimit": {"limit": 1, "period": "0s"}}, "at least 1s"),
    ({"debounce": {"period": "0s"}}, "at least 1s"),
    ({"batchEvents": {"maxSize": 0, "timeout": "5s"}}, "greater than or equal to 1"),
    ({"timeouts": {"finish": "0s"}}, "longer than 0s"),
    ({"cancel": [{"event": "x", "timeout": "0s"}]}, "longer than 0s"),
    ({"throttle": {"limit": 1, "period": "1m", "burst": -1}}, "greater than or equal to 0"),
])
def test_registration_refuses_zero_and_negative_limits(engine, fn, reason):
    r = register(engine, "robust-limits", {**function_doc("robust-limits"), **fn})
    assert r.status_code == 400 and reason in r.json()["error"], r.text
    assert app_functions(engine, "robust-limits") == []


def test_limits_of_one_and_periods_of_one_second_are_fine(engine):
    fn = function_doc("robust-minimal", concurrency=[{"limit": 1}],
                      throttle={"limit": 1, "period": "1s", "burst": 0},
                      timeouts={"finish": "1s"})
    assert register(engine, "robust-minimal", fn).status_code == 200
    assert app_functions(engine, "robust-minimal") == ["robust-minimal"]


@pytest.mark.parametrize("cron, reason", [
    ("0 0 31 2 *", "never fires"), ("0 0 30 2 *", "never fires"),
    ("* * * * * *", "5 fields"), ("0 9 * *", "invalid cron"),
])
def test_a_cron_that_cannot_fire_is_refused_and_stores_nothing(fresh_engine, cron, reason):
    fn = function_doc("robust-cron-fn", triggers=[{"cron": cron}])
    r = register(fresh_engine, "robust-cron", fn)
    assert r.status_code == 400 and reason in r.json()["error"], r.text
    assert app_functions(fresh_engine, "robust-cron") == []
    still_usable(fresh_engine)              # every later sync of any app still works
    leap = register(fresh_engine, "robust-cron",
                    function_doc("robust-cron-fn", triggers=[{"cron": "0 0 29 2 *"}]))
    assert leap.status_code == 200, leap.text


def test_registration_body_must_be_strict_json(engine):
    bad = post(engine, "/fn/register", b'{"appname": "robust-nan", "functions": [NaN]}')
    assert bad.status_code == 400 and "NaN" in bad.json()["error"]


def _padded(doc: dict, size: int) -> bytes:
    """``doc`` with a "pad" string that makes the compact JSON exactly ``size`` bytes."""
    body = json.dumps({**doc, "pad": ""}, separators=(",", ":")).encode()
    return body[:-2] + b"x" * (size - len(body)) + b'"}'


REGISTRATION = {"appname": "robust-padded", "url": "http://127.0.0.1:9/api/inngest",
                "functions": [function_doc("robust-padded-fn")]}


@pytest.mark.parametrize("path, cap, doc", [
    ("/fn/register", limits.SYNC_BODY_MAX_BYTES, REGISTRATION),
    ("/v0/gql", limits.GRAPHQL_BODY_MAX_BYTES, {"query": "{ apps { id } }"}),
    ("/lab/v1/clock/auto", limits.API_BODY_MAX_BYTES, {"enabled": True}),
    ("/v1/cancellations", limits.API_BODY_MAX_BYTES, {}),
    ("/mcp", limits.MCP_BODY_MAX_BYTES, {"jsonrpc": "2.0", "id": 1, "method": "ping"}),
])
def test_request_body_caps(engine, path, cap, doc):
    at = post(engine, path, _padded(doc, cap))
    assert at.status_code != 413, at.text[:300]
    past = post(engine, path, _padded(doc, cap + 1))
    assert past.status_code == 413 and str(cap) in past.json()["error"]
    still_usable(engine)


# -- the lab API -------------------------------------------------------------------------
@pytest.mark.parametrize("path, body", [
    ("/lab/v1/chaos", {"function": "f", "step": "s", "times": "many"}),
    ("/lab/v1/chaos", {"function": "f", "step": "s", "times": 1.5}),
    ("/lab/v1/chaos", {"function": ["f"], "step": "s"}),
    ("/lab/v1/chaos", b'{"function": "f", "step": "s", "times": Infinity}'),
    ("/lab/v1/sync", {"url": 5}),
    ("/lab/v1/sync", {"url": "http://" + "a" * 3000}),
    ("/lab/v1/clock/advance", b"[1, 2"),
    ("/lab/v1/clock/advance", b'"seconds"'),
])
def test_lab_api_refuses_wrong_types(engine, path, body):
    r = post(engine, path, body)
    assert r.status_code == 400 and r.json()["error"], r.text
    assert httpx.get(engine.url + "/lab/v1/chaos").json()["data"] == []


def test_lab_sync_fails_when_nothing_registered_here(engine):
    """An app whose SDK registers with another server answers "ok" for a sync that never
    reached this engine; the lab's sync must say so instead of reporting success."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    elsewhere = FastAPI()

    @elsewhere.put("/api/inngest")
    def put():        # what the SDK returns: the other server's registration reply
        return JSONResponse({"ok": True, "modified": True, "app_id": "not-this-engine",
                             "sync_id": "x"}, headers={"x-inngest-sdk": "inngest-py:v0.5.19"})

    host = ThreadedHost(elsewhere).start()
    try:
        r = post(engine, "/lab/v1/sync", {"url": host.url + "/api/inngest"})
        assert r.status_code == 400 and "no app registered with this engine" in r.json()["error"]
    finally:
        host.stop()


# -- static pages and GraphQL ------------------------------------------------------------
def test_no_page_loads_a_third_party_script(engine):
    assert httpx.get(engine.url + "/lab/docs").status_code == 404
    assert httpx.get(engine.url + "/lab/openapi.json").status_code == 200
    explorer = httpx.get(engine.url + "/v0/gql", headers={"accept": "text/html"})
    assert explorer.status_code == 405 and "cdn" not in explorer.text.lower()
    index = httpx.get(engine.url + "/").text
    assert "://" not in index.replace("http://www.w3.org", "")


@pytest.mark.parametrize("name", ["a%00b", "..%2f..%2fetc%2fpasswd", "x" * 5000])
def test_dashboard_file_names_that_broke_it(engine, name):
    assert httpx.get(f"{engine.url}/dashboard/{name}").status_code == 404


def gql(engine, query: str, variables: dict | None = None) -> httpx.Response:
    return httpx.post(engine.url + "/v0/gql", json={"query": query, "variables": variables or {}},
                      timeout=30)


def nested_spans(levels: int) -> str:
    # run(1) > trace(2) > childrenSpans ... > name(levels): each childrenSpans adds a level.
    inner = "name"
    for _ in range(levels - 3):
        inner = "childrenSpans { " + inner + " }"
    return 'query { run(runID: "01J0000000000000000000000") { trace { ' + inner + " } } }"


def test_graphql_depth_limit(engine):
    at = gql(engine, nested_spans(limits.GRAPHQL_MAX_DEPTH))
    assert at.status_code == 200 and not at.json().get("errors"), at.text
    past = gql(engine, nested_spans(limits.GRAPHQL_MAX_DEPTH + 1))
    assert past.status_code == 400 and "deeper than" in past.text


def test_graphql_cost_limit(engine):
    def aliases(n: int) -> str:
        return "query { " + " ".join(f"a{i}: apps {{ id }}" for i in range(n // 2)) + " }"
    assert gql(engine, aliases(limits.GRAPHQL_MAX_COST)).status_code == 200
    over = gql(engine, aliases(limits.GRAPHQL_MAX_COST + 2))
    assert over.status_code == 400 and "maximum cost" in over.text
    frags = ["fragment F0 on App { id name }"] + [
        f"fragment F{i} on App {{ ...F{i - 1} functions {{ app {{ ...F{i - 1} }} }} }}"
        for i in range(1, 30)]
    explosion = gql(engine, "\n".join(frags) + "\nquery { apps { ...F29 } }")
    assert explosion.status_code == 400


def test_graphql_variables_are_strict_json(engine):
    r = httpx.post(engine.url + "/v0/gql", timeout=10,
                   content=b'{"query": "mutation($d: Map) { invokeFunction(functionSlug: '
                           b'\\"x\\", data: $d) }", "variables": {"d": {"x": NaN}}}',
                   headers={"content-type": "application/json"})
    assert r.status_code == 400 and "NaN" in r.text


# -- the MCP docs search -----------------------------------------------------------------
def test_a_catastrophic_regex_does_not_freeze_the_engine(engine):
    """``(\\w+\\s?)+$`` backtracks exponentially in Python's re on a line that ends with a
    full stop; RE2 answers in linear time, so the call returns and the engine still serves."""

    async def run():
        async with Client(engine.url + "/mcp", read_timeout_seconds=30) as client:
            slow = await client.call_tool("grep_docs", {"pattern": r"(\w+\s?)+$"})
            health = (await asyncio.to_thread(httpx.get, engine.url + "/health",
                                              timeout=5)).status_code
            look = await client.call_tool("grep_docs", {"pattern": r"(?=clock)"})
            long = await client.call_tool("grep_docs",
                                          {"pattern": "a" * (limits.GREP_PATTERN_MAX_CHARS + 1)})
            return slow, health, look, long

    slow, health, look, long = asyncio.run(asyncio.wait_for(run(), 60))
    assert not slow.is_error and json.loads(text_of(slow))["count"] >= 1
    assert health == 200
    assert look.is_error and "look-arounds" in text_of(look)
    assert long.is_error and str(limits.GREP_PATTERN_MAX_CHARS) in text_of(long)
