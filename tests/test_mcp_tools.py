"""The MCP engine tools answer through an MCP client, against a running embedded engine.

An SDK app (served by ThreadedHost) is synced to the engine; the MCP server is served over
streamable HTTP at /mcp (see mcp_helpers) and pointed at the engine's own HTTP API.
"""

from __future__ import annotations

import json

import httpx
import inngest
import inngest.fast_api
import pytest
from fastapi import FastAPI

from lab_support.host import ThreadedHost
from mcp_helpers import call_tools, serve_mcp, text_of

APP_ID = "mcp-tools-test"


def build_app(engine_url: str):
    client = inngest.Inngest(app_id=APP_ID, is_production=False, api_base_url=engine_url,
                             event_api_base_url=engine_url)
    attempts = {"flaky": 0}

    @client.create_function(fn_id="greet", trigger=inngest.TriggerEvent(event="mcp/greet"))
    async def greet(ctx: inngest.Context) -> str:
        async def hello() -> str:
            return f"Hello, {ctx.event.data.get('name', 'nobody')}"
        return await ctx.step.run("hello", hello)

    @client.create_function(fn_id="flaky", trigger=inngest.TriggerEvent(event="mcp/flaky"),
                            retries=1)
    async def flaky(ctx: inngest.Context) -> dict:
        async def wobble() -> int:
            attempts["flaky"] += 1
            if attempts["flaky"] == 1:
                raise RuntimeError("first attempt fails on purpose")
            return attempts["flaky"]
        return {"attempt": await ctx.step.run("wobble", wobble)}

    app = FastAPI()
    inngest.fast_api.serve(app, client, [greet, flaky])
    return app, greet, flaky


@pytest.fixture(scope="module")
def synced(engine):
    app, greet, flaky = build_app(engine.url)
    host = ThreadedHost(app).start()
    try:
        resp = httpx.post(engine.url + "/lab/v1/sync",
                          json={"url": host.url + "/api/inngest"}, timeout=30)
        assert resp.status_code == 200, resp.text
        with serve_mcp(engine.url) as base:
            yield {"mcp": base + "/mcp", "engine": engine.url, "greet": greet.id,
                   "flaky": flaky.id}
    finally:
        host.stop()


def as_json(result):
    assert not result.is_error, text_of(result)
    return json.loads(text_of(result))


def plain(slug):
    """The app-relative slug the real server's list_functions answers with."""
    return slug.removeprefix(APP_ID + "-")


def test_list_functions(synced):
    """The real server's shape: appId required, ``data`` + ``page``, app-relative slugs."""
    (result, missing, other_app) = call_tools(synced["mcp"], [
        ("list_functions", {"appId": APP_ID}), ("list_functions", {}),
        ("list_functions", {"appId": "no-such-app"})])
    answer = as_json(result)
    functions = {f["slug"]: f for f in answer["data"]}
    assert {plain(synced["greet"]), plain(synced["flaky"])} <= set(functions)
    assert answer["page"] == {"limit": 20}  # no more pages: the real server omits hasMore
    assert functions[plain(synced["greet"])]["app"] == {"id": APP_ID}
    assert functions[plain(synced["greet"])]["id"] == plain(synced["greet"])
    assert {"type": "EVENT", "value": "mcp/greet"} in \
        functions[plain(synced["greet"])]["triggers"]
    assert missing.is_error and "App ID is required" in text_of(missing)
    assert "data" not in as_json(other_app)  # the real server omits an empty list


def test_list_functions_pages_with_the_cursor(synced):
    (everything,) = call_tools(synced["mcp"], [("list_functions", {"appId": APP_ID})])
    slugs = [f["slug"] for f in as_json(everything)["data"]]
    assert len(slugs) >= 2
    (first,) = call_tools(synced["mcp"], [("list_functions", {"appId": APP_ID, "limit": 1})])
    first = as_json(first)
    assert first["page"]["hasMore"] is True and len(first["data"]) == 1
    (second, bad) = call_tools(synced["mcp"], [
        ("list_functions", {"appId": APP_ID, "limit": 1, "cursor": first["page"]["cursor"]}),
        ("list_functions", {"appId": APP_ID, "limit": 101})])
    assert as_json(second)["data"][0]["slug"] == slugs[1]
    assert bad.is_error and "Limit" in text_of(bad)


def test_send_event_then_poll_and_inspect(synced):
    (sent,) = call_tools(synced["mcp"], [("send_event", {"name": "mcp/greet",
                                                          "data": {"name": "Ada"}})])
    sent = as_json(sent)
    assert sent["eventId"] and len(sent["runIds"]) == 1
    run_id = sent["runIds"][0]
    polled, status = call_tools(synced["mcp"], [
        ("poll_run_status", {"runIds": [run_id], "timeout": 30, "pollInterval": 50}),
        ("get_run_status", {"runId": run_id})])
    polled = as_json(polled)
    assert polled["done"] and not polled["failed"]
    assert polled["runs"][run_id]["status"] == "Completed"
    status = as_json(status)
    assert status["status"] == "COMPLETED" and status["function"] == synced["greet"]
    hello = [s for s in status["steps"] if s["name"] == "hello"]
    assert hello and "Hello, Ada" in hello[0]["output"]


def test_get_run_status_shows_attempts_of_a_retried_step(synced):
    (sent,) = call_tools(synced["mcp"], [("send_event", {"name": "mcp/flaky"})])
    run_id = as_json(sent)["runIds"][0]
    polled, status = call_tools(synced["mcp"], [
        ("poll_run_status", {"runIds": [run_id], "timeout": 30, "pollInterval": 50}),
        ("get_run_status", {"runId": run_id})])
    assert as_json(polled)["runs"][run_id]["status"] == "Completed"
    wobble = [s for s in as_json(status)["steps"] if s["name"] == "wobble"]
    assert wobble and wobble[0]["attempts"] == 2 and wobble[0]["output"] == "2"


def test_invoke_function_waits_for_the_result(synced):
    (result,) = call_tools(synced["mcp"], [("invoke_function", {
        "functionId": synced["greet"], "data": {"name": "Grace"}, "timeout": 30})])
    result = as_json(result)
    assert result["status"] == "Completed"
    assert "Hello, Grace" in json.dumps(result["output"])


def test_send_event_wraps_non_object_data_and_reports_no_runs(synced):
    (result,) = call_tools(synced["mcp"], [("send_event", {"name": "mcp/nobody-listens",
                                                            "data": 7})])
    result = as_json(result)
    assert "runIds" not in result  # the real server leaves an empty list out
    event = httpx.get(f"{synced['engine']}/v1/events/{result['eventId']}", timeout=5).json()
    assert event["data"]["data"] == {"value": 7}


def test_bad_input_gets_clear_errors(synced):
    unknown_run, unknown_fn, no_ids, bad_timeout = call_tools(synced["mcp"], [
        ("get_run_status", {"runId": "01J00000000000000000000000"}),
        ("invoke_function", {"functionId": "no-such-function"}),
        ("poll_run_status", {"runIds": []}),
        ("invoke_function", {"functionId": synced["greet"], "timeout": -1}),
    ])
    assert unknown_run.is_error
    assert unknown_fn.is_error and synced["greet"] in text_of(unknown_fn)
    assert no_ids.is_error and "run id" in text_of(no_ids)
    assert bad_timeout.is_error and "timeout" in text_of(bad_timeout)


def test_engine_serves_the_tools_at_mcp(synced):
    """The engine's own /mcp mount (the address Claude Code / OpenCode are given)."""
    for url in (synced["engine"] + "/mcp", synced["engine"] + "/mcp/"):
        functions, docs = call_tools(url, [("list_functions", {"appId": APP_ID}),
                                           ("list_docs", {})])
        assert plain(synced["greet"]) in [f["slug"] for f in as_json(functions)["data"]]
        assert "notes/virtual-clock.md" in [d["path"] for d in as_json(docs)["docs"]]


def test_send_event_with_the_same_event_id_runs_once(synced):
    first, second = call_tools(synced["mcp"], [
        ("send_event", {"name": "mcp/greet", "data": {"name": "Once"}, "eventIdSeed": "order-77"}),
        ("send_event", {"name": "mcp/greet", "data": {"name": "Once"}, "eventIdSeed": "order-77"})])
    assert len(as_json(first)["runIds"]) == 1
    assert "runIds" not in as_json(second)
