"""The engine's observation and sync surfaces, with the real server's shapes: REST v1, v0,
GraphQL queries and mutations, sync at start (-u) and re-sync replacing the function set."""

from __future__ import annotations

import datetime

import httpx
import inngest
import inngest.fast_api
from fastapi import FastAPI

from engine_helpers import (event_runs, gql, make_client, send, serving, sync, wait_for,
                            wait_run, wait_run_for_event)
from lab_support.engine_process import EngineProcess
from lab_support.host import ThreadedHost, free_port


def test_rest_shapes(fresh_engine):
    client = make_client(fresh_engine, "shapes")

    @client.create_function(fn_id="greet", trigger=inngest.TriggerEvent(event="a/greet"),
                            concurrency=[inngest.Concurrency(limit=3)])
    def greet(ctx: inngest.ContextSync) -> str:
        ctx.step.sleep("breath", datetime.timedelta(seconds=30))
        return "hi " + ctx.event.data["name"]

    with serving(fresh_engine, client, [greet]):
        url = fresh_engine.url
        eid = send(fresh_engine, "a/greet", {"name": "Ana"}, id="greet-1")
        ev = httpx.get(f"{url}/v1/events/{eid}").json()
        assert ev["data"]["internal_id"] == eid and ev["data"]["id"] == "greet-1"
        assert ev["data"]["name"] == "a/greet" and isinstance(ev["data"]["ts"], int)
        assert "fetched_at" in ev["metadata"]
        listed = httpx.get(f"{url}/v1/events", params={"name": "a/greet"}).json()["data"]
        assert [e["internal_id"] for e in listed] == [eid]
        done = wait_run_for_event(fresh_engine, eid)
        assert done["output"] == "hi Ana" and done["status"] == "Completed"
        assert set(done) >= {"run_id", "run_started_at", "function_id", "function_version",
                             "environment_id", "event_id", "status", "ended_at", "output"}
        assert httpx.get(f"{url}/v1/runs/{done['run_id']}/jobs").json()["data"] == []
        assert httpx.get(f"{url}/v1/events/01M86000000000000000000000").json()["status"] == 404
        fns = httpx.get(f"{url}/v1/apps/shapes/functions").json()
        assert isinstance(fns, list) and fns[0]["id"] == "shapes-greet"
        assert fns[0]["config"]["concurrency"] == [{"limit": 3}]
        assert httpx.get(f"{url}/v1/apps/nope/functions").json() == []
        gone = httpx.get(f"{url}/v0/runs/{done['run_id']}/actions")
        assert gone.status_code == 410, "finished runs have no runtime state"
        health = httpx.get(f"{url}/health")
        assert health.json() == {"status": 200, "message": "OK"}
        assert health.headers["x-inngest-server-kind"] == "dev"
        assert httpx.get(f"{url}/dev").json()["engine"] == "embedded"


def test_graphql_queries_and_mutations(fresh_engine):
    client = make_client(fresh_engine, "gq")
    seen = []

    @client.create_function(fn_id="echo", trigger=inngest.TriggerEvent(event="g/echo"))
    def echo(ctx: inngest.ContextSync) -> dict:
        value = ctx.step.run("copy", lambda: dict(ctx.event.data))
        seen.append(ctx.event.name)
        return value

    with serving(fresh_engine, client, [echo]):
        fns = gql(fresh_engine, "{ functions { id slug name triggers { type value } app { name } } }")
        assert fns["functions"][0]["slug"] == "gq-echo"
        assert fns["functions"][0]["triggers"] == [{"type": "EVENT", "value": "g/echo"}]
        assert gql(fresh_engine, 'mutation { invokeFunction(functionSlug: "gq-echo", data: {x: 1}) }')
        wait_for(lambda: seen == ["inngest/function.invoked"], 10, "the invoked run")
        eid = send(fresh_engine, "g/echo", {"x": 2})
        done = wait_run_for_event(fresh_engine, eid)
        run_id = done["run_id"]
        runs = gql(fresh_engine, """query($from: Time!){ runs(first: 10, filter: {from: $from,
            status: [COMPLETED]}, orderBy: [{field: QUEUED_AT, direction: ASC}]) { totalCount
            edges { node { id status eventName function { slug } } } } }""",
                   **{"from": "2000-01-01T00:00:00Z"})["runs"]
        assert runs["totalCount"] == 2
        assert runs["edges"][-1]["node"] == {"id": run_id, "status": "COMPLETED",
                                             "eventName": "g/echo", "function": {"slug": "gq-echo"}}
        trigger = gql(fresh_engine, "query($id: String!){ runTrigger(runID: $id){ eventName IDs isBatch } }",
                      id=run_id)["runTrigger"]
        assert trigger == {"eventName": "g/echo", "IDs": [eid], "isBatch": False}
        span = gql(fresh_engine, "query($id: String!){ runTrace(runID: $id){ name childrenSpans{ name outputID } } }",
                   id=run_id)["runTrace"]
        assert span["name"] == "Run"
        out = gql(fresh_engine, "query($o: String!){ runTraceSpanOutputByID(outputID: $o){ data error { message } } }",
                  o=span["childrenSpans"][0]["outputID"])["runTraceSpanOutputByID"]
        assert out == {"data": '{"x": 2}', "error": None}
        # A plain rerun repeats every step with the same triggering event.
        again = gql(fresh_engine, "mutation($id: ULID!){ rerun(runID: $id) }", id=run_id)["rerun"]
        assert wait_run(fresh_engine, again)["output"] == {"x": 2}
        bad = httpx.post(fresh_engine.url + "/v0/gql", json={"query": '{ run(runID: "nope") { id } }'}).json()
        assert bad["data"]["run"] is None
        err = httpx.post(fresh_engine.url + "/v0/gql",
                         json={"query": 'mutation { rerun(runID: "01M86000000000000000000000") }'}).json()
        assert "not found" in err["errors"][0]["message"]


def test_sync_at_start_and_resync_replaces_functions():
    port = free_port()
    engine_url = f"http://127.0.0.1:{port}"
    client = inngest.Inngest(app_id="resync", is_production=False, api_base_url=engine_url,
                             event_api_base_url=engine_url)
    calls = []

    @client.create_function(fn_id="old", trigger=inngest.TriggerEvent(event="r/go"))
    def old(ctx: inngest.ContextSync) -> None:
        calls.append("old")

    @client.create_function(fn_id="new", trigger=inngest.TriggerEvent(event="r/go"))
    def new(ctx: inngest.ContextSync) -> None:
        calls.append("new")

    app = FastAPI()
    inngest.fast_api.serve(app, client, [old])
    with ThreadedHost(app) as host:
        serve_url = host.url + "/api/inngest"
        eng = EngineProcess(port=port, memory=True, sdk_urls=(serve_url,)).start()
        try:
            fns = wait_for(lambda: httpx.get(f"{eng.url}/v1/apps/resync/functions").json(), 10,
                           "the app synced by -u at start")
            assert [f["id"] for f in fns] == ["resync-old"]
            app2 = FastAPI()
            inngest.fast_api.serve(app2, make_client(eng, "resync"), [new])
            with ThreadedHost(app2) as host2:
                sync(eng, host2.url + "/api/inngest")
                fns = httpx.get(f"{eng.url}/v1/apps/resync/functions").json()
                assert [f["id"] for f in fns] == ["resync-new"], "re-sync replaces the set"
                eid = send(eng, "r/go")
                wait_for(lambda: calls == ["new"], 10, "only the new function runs")
                assert len(event_runs(eng, eid)) == 1
        finally:
            eng.stop()
