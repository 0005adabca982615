"""The embedded engine driven by the official SDK over HTTP: each numbered item of the
core issue, observed from the host side and through REST / GraphQL."""

from __future__ import annotations

import datetime
import threading

import httpx
import inngest
import pytest
from fastapi import FastAPI
from inngest.experimental.ai import openai as ai_openai

from engine_helpers import (advance, event_runs, gql, make_client, run, send, serving, trace,
                            wait_for, wait_run, wait_run_for_event)
from lab_support.host import ThreadedHost


@pytest.fixture
def client(fresh_engine):
    return make_client(fresh_engine)


def test_steps_run_once_across_retries_and_attempts_are_counted(fresh_engine, client):
    calls = {"load": 0, "flaky": 0}

    @client.create_function(fn_id="retrying", trigger=inngest.TriggerEvent(event="t/retry"))
    def retrying(ctx: inngest.ContextSync) -> str:
        def load():
            calls["load"] += 1
            return "loaded"

        def flaky():
            calls["flaky"] += 1
            if calls["flaky"] < 3:
                raise ValueError(f"transient failure {calls['flaky']}")
            return "ok"
        first = ctx.step.run("load", load)
        second = ctx.step.run("flaky", flaky)
        return f"{first}+{second}"

    with serving(fresh_engine, client, [retrying]):
        eid = send(fresh_engine, "t/retry")
        result = wait_run_for_event(fresh_engine, eid)
        assert result["status"] == "Completed", result
        assert result["output"] == "loaded+ok"
        assert calls == {"load": 1, "flaky": 3}, "memoized step must not re-run on retries"
        spans = {s["name"]: s for s in trace(fresh_engine, result["run_id"])["trace"]["childrenSpans"]}
        assert spans["flaky"]["attempts"] == 3
        assert [a["status"] for a in spans["flaky"]["childrenSpans"]] == ["FAILED", "FAILED", "COMPLETED"]
        assert spans["load"]["attempts"] == 1


def test_final_failure_after_default_retries_emits_failure_events(fresh_engine, client):
    attempts = []
    handled = []

    def on_failure(ctx: inngest.ContextSync) -> None:
        handled.append(ctx.event.data)

    @client.create_function(fn_id="doomed", trigger=inngest.TriggerEvent(event="t/doomed"),
                            on_failure=on_failure)
    def doomed(ctx: inngest.ContextSync) -> None:
        ctx.step.run("always", lambda: attempts.append(1) or (_ for _ in ()).throw(RuntimeError("nope")))

    with serving(fresh_engine, client, [doomed]):
        eid = send(fresh_engine, "t/doomed")
        result = wait_run_for_event(fresh_engine, eid)
        assert result["status"] == "Failed"
        assert len(attempts) == 5, "default retries = 4, i.e. 5 attempts"
        wait_for(lambda: handled, 10, "the on_failure handler")
        failed = handled[0]
        assert failed["function_id"] == "test-app-doomed"
        assert failed["run_id"] == result["run_id"]
        assert failed["error"]["message"]
        events = gql(fresh_engine, """query($from: Time!){ eventsV2(first: 50, filter:{from: $from,
            includeInternalEvents: true}){ edges{ node{ name idempotencyKey } } } }""",
                     **{"from": "2000-01-01T00:00:00Z"})["eventsV2"]["edges"]
        names = {e["node"]["name"]: e["node"]["idempotencyKey"] for e in events}
        assert names["inngest/function.failed"] == result["run_id"], "failed event id = run id"
        assert "inngest/function.finished" in names


def test_non_retriable_and_retry_after(fresh_engine, client):
    counts = {"nr": 0, "ra": 0}

    @client.create_function(fn_id="nonretry", trigger=inngest.TriggerEvent(event="t/nr"))
    def nonretry(ctx: inngest.ContextSync) -> None:
        def body():
            counts["nr"] += 1
            raise inngest.NonRetriableError("card declined")
        ctx.step.run("charge", body)

    @client.create_function(fn_id="retryafter", trigger=inngest.TriggerEvent(event="t/ra"))
    def retryafter(ctx: inngest.ContextSync) -> str:
        def body():
            counts["ra"] += 1
            if counts["ra"] == 1:
                raise inngest.RetryAfterError("rate limited", datetime.timedelta(hours=2))
            return "done"
        return ctx.step.run("call-api", body)

    with serving(fresh_engine, client, [nonretry, retryafter]):
        r1 = wait_run_for_event(fresh_engine, send(fresh_engine, "t/nr"))
        assert r1["status"] == "Failed" and counts["nr"] == 1
        assert r1["output"]["code"] == "non_retriable_error", r1
        before = advance(fresh_engine, seconds=0)["now_ms"]
        r2 = wait_run_for_event(fresh_engine, send(fresh_engine, "t/ra"))
        assert r2["status"] == "Completed" and counts["ra"] == 2
        elapsed = (datetime.datetime.fromisoformat(r2["ended_at"].replace("Z", "+00:00")).timestamp() * 1000
                   - before)
        assert elapsed >= 2 * 3_600_000 - 5_000, "retry-after of 2 h is honoured on the engine clock"


def test_sleep_wait_match_nonmatch_and_timeout(fresh_engine, client):
    seen = {}

    @client.create_function(fn_id="gate", trigger=inngest.TriggerEvent(event="t/gate"))
    def gate(ctx: inngest.ContextSync) -> dict:
        ctx.step.sleep("nap", datetime.timedelta(days=3))
        decision = ctx.step.wait_for_event("approval", event="t/decision",
                                           if_exp="async.data.request_id == event.data.request_id",
                                           timeout=datetime.timedelta(hours=24))
        seen[ctx.event.data["request_id"]] = decision
        return {"approved": decision.data["ok"] if decision else None}

    with serving(fresh_engine, client, [gate]):
        # One request, so both runs sleep together: auto-advance never jumps past an open
        # wait's deadline, so a run that started later would wait for an explicit advance.
        e_match, e_timeout = httpx.post(fresh_engine.url + "/e/k", json=[
            {"name": "t/gate", "data": {"request_id": "r1"}},
            {"name": "t/gate", "data": {"request_id": "r2"}}]).json()["ids"]

        def both_waiting():
            spans = []
            for eid in (e_match, e_timeout):
                runs = event_runs(fresh_engine, eid)
                if not runs:
                    return False
                spans.append({s["name"]: s for s in trace(fresh_engine, runs[0]["run_id"])["trace"]["childrenSpans"]})
            return all(s.get("approval", {}).get("status") == "WAITING" for s in spans) and spans
        spans = wait_for(both_waiting, 20, "both runs waiting for approval")
        sleep = spans[0]["nap"]
        start = datetime.datetime.fromisoformat(sleep["startedAt"].replace("Z", "+00:00"))
        end = datetime.datetime.fromisoformat(sleep["endedAt"].replace("Z", "+00:00"))
        assert abs((end - start) - datetime.timedelta(days=3)) < datetime.timedelta(seconds=5)
        send(fresh_engine, "t/decision", {"request_id": "someone-else", "ok": False})  # non-match
        send(fresh_engine, "t/decision", {"request_id": "r1", "ok": True})
        r_match = wait_run_for_event(fresh_engine, e_match)
        assert r_match["output"] == {"approved": True}
        assert run(fresh_engine, event_runs(fresh_engine, e_timeout)[0]["run_id"])["status"] == "Running"
        advance(fresh_engine, duration="25h")
        r_timeout = wait_run_for_event(fresh_engine, e_timeout)
        assert r_timeout["output"] == {"approved": None}
        assert seen["r2"] is None
        span = {s["name"]: s for s in trace(fresh_engine, r_timeout["run_id"])["trace"]["childrenSpans"]}
        assert span["approval"]["stepInfo"]["timedOut"] is True


def test_invoke_parallel_and_send_event(fresh_engine, client):
    received = []

    @client.create_function(fn_id="child", trigger=inngest.TriggerEvent(event="t/never"))
    def child(ctx: inngest.ContextSync) -> int:
        if ctx.event.data.get("fail"):
            raise inngest.NonRetriableError("child refused")
        return ctx.event.data["n"] * 2

    @client.create_function(fn_id="listener", trigger=inngest.TriggerEvent(event="t/fanned"))
    def listener(ctx: inngest.ContextSync) -> None:
        received.append(ctx.event.data["k"])

    @client.create_function(fn_id="parent", trigger=inngest.TriggerEvent(event="t/parent"))
    def parent(ctx: inngest.ContextSync) -> dict:
        doubled = ctx.step.invoke("double", function=child, data={"n": 21})
        try:
            ctx.step.invoke("refuse", function=child, data={"fail": True})
            refused = None
        except inngest.StepError as exc:
            refused = str(exc)
        a, b = ctx.group.parallel((lambda: ctx.step.run("p", lambda: "x"),
                                   lambda: ctx.step.run("p", lambda: "y")))
        ids = ctx.step.send_event("fan", [inngest.Event(name="t/fanned", data={"k": i}) for i in range(3)])
        return {"doubled": doubled, "refused": refused, "par": [a, b], "sent": len(ids)}

    with serving(fresh_engine, client, [child, listener, parent]):
        result = wait_run_for_event(fresh_engine, send(fresh_engine, "t/parent"))
        assert result["status"] == "Completed", result
        out = result["output"]
        assert out["doubled"] == 42 and out["par"] == ["x", "y"] and out["sent"] == 3
        assert "child refused" in out["refused"]
        wait_for(lambda: sorted(received) == [0, 1, 2], 10, "three fanned-out runs")


def test_event_id_dedup_and_fan_out(fresh_engine, client):
    hits = []

    @client.create_function(fn_id="one", trigger=inngest.TriggerEvent(event="t/dup"))
    def one(ctx: inngest.ContextSync) -> None:
        hits.append("one")

    @client.create_function(fn_id="two", trigger=inngest.TriggerEvent(event="t/dup"))
    def two(ctx: inngest.ContextSync) -> None:
        hits.append("two")

    with serving(fresh_engine, client, [one, two]):
        first = send(fresh_engine, "t/dup", {"x": 1}, id="order-7")
        second = send(fresh_engine, "t/dup", {"x": 1}, id="order-7")
        assert first != second, "ingest returns internal ids, one per event"
        wait_for(lambda: len(hits) >= 2, 10, "both functions to run")
        assert sorted(hits) == ["one", "two"], "fan-out: every matching function runs"
        assert event_runs(fresh_engine, second) == [], "a duplicate id starts no run"
        assert len(event_runs(fresh_engine, first)) == 2


def test_cron_fires_daily_on_the_virtual_clock(fresh_engine, client):
    ticks = []

    @client.create_function(fn_id="daily", trigger=inngest.TriggerCron(cron="0 9 * * *"))
    def daily(ctx: inngest.ContextSync) -> str:
        ticks.append(ctx.event)
        return ctx.event.data["cron"]

    with serving(fresh_engine, client, [daily]):
        clock = httpx.get(fresh_engine.url + "/lab/v1/clock").json()
        assert clock["next_timer_kind"] == "cron"
        advance(fresh_engine, to_next_timer=True)
        wait_for(lambda: ticks, 10, "the 09:00 cron run")
        event = ticks[0]
        assert event.name == "inngest/scheduled.timer"
        assert event.id.endswith("T09:00:00Z")
        assert event.data["cron"] == "0 9 * * *"
        advance(fresh_engine, duration="1d")
        wait_for(lambda: len(ticks) == 2, 10, "the next day's cron run")
        advance(fresh_engine, duration="3d")     # one jump, three 09:00 ticks inside it
        wait_for(lambda: len(ticks) == 5, 10, "a run for every tick in the jump")
        days = [t.id[:10] for t in ticks]
        assert len(set(days)) == 5, f"one run per day, each with its own date: {days}"


def test_rerun_from_step_does_not_reexecute_earlier_steps(fresh_engine, client):
    calls = {"load": 0, "agent": 0, "save": 0}
    broken = {"on": True}

    @client.create_function(fn_id="fixable", trigger=inngest.TriggerEvent(event="t/fix"), retries=0)
    def fixable(ctx: inngest.ContextSync) -> str:
        def load():
            calls["load"] += 1
            return "customer"

        def agent(who):
            calls["agent"] += 1
            if broken["on"]:
                raise RuntimeError("agent bug")
            return f"draft for {who}"
        who = ctx.step.run("load", load)
        draft = ctx.step.run("agent", agent, who)
        ctx.step.run("save", lambda: calls.__setitem__("save", calls["save"] + 1))
        return draft

    with serving(fresh_engine, client, [fixable]):
        failed = wait_run_for_event(fresh_engine, send(fresh_engine, "t/fix"))
        assert failed["status"] == "Failed"
        broken["on"] = False
        new_id = gql(fresh_engine, """mutation($id: ULID!){ rerun(runID: $id, fromStep: {stepID: "agent"}) }""",
                     id=failed["run_id"])["rerun"]
        replayed = wait_run(fresh_engine, new_id)
        assert replayed["status"] == "Completed" and replayed["output"] == "draft for customer"
        assert replayed["original_run_id"] == failed["run_id"]
        assert calls == {"load": 1, "agent": 2, "save": 1}, "load came from memo on replay"
        spans = {s["name"]: s for s in trace(fresh_engine, new_id)["trace"]["childrenSpans"]}
        assert spans["load"]["memoized"] is True and spans["agent"]["memoized"] is False


def test_cancel_through_rest_and_graphql(fresh_engine, client):
    @client.create_function(fn_id="sleeper", trigger=inngest.TriggerEvent(event="t/sleep"))
    def sleeper(ctx: inngest.ContextSync) -> None:
        ctx.step.wait_for_event("forever", event="t/never", timeout=datetime.timedelta(days=30))

    cancelled = []

    @client.create_function(fn_id="watcher",
                            trigger=inngest.TriggerEvent(event="inngest/function.cancelled"))
    def watcher(ctx: inngest.ContextSync) -> None:
        cancelled.append(ctx.event.data["run_id"])

    with serving(fresh_engine, client, [sleeper, watcher]):
        a = wait_run_for_event(fresh_engine, send(fresh_engine, "t/sleep"), status="Running")
        b = wait_run_for_event(fresh_engine, send(fresh_engine, "t/sleep"), status="Running")
        assert httpx.delete(f"{fresh_engine.url}/v1/runs/{a['run_id']}").status_code == 200
        assert httpx.delete(f"{fresh_engine.url}/v1/runs/{a['run_id']}").status_code == 409
        gql(fresh_engine, "mutation($id: ULID!){ cancelRun(runID: $id){ id status } }", id=b["run_id"])
        assert wait_run(fresh_engine, a["run_id"])["status"] == "Cancelled"
        assert wait_run(fresh_engine, b["run_id"])["status"] == "Cancelled"
        wait_for(lambda: sorted(cancelled) == sorted([a["run_id"], b["run_id"]]), 10,
                 "function.cancelled events")


def test_ai_infer_goes_through_the_engine(fresh_engine, client):
    seen = []
    model_app = FastAPI()

    @model_app.post("/v1/chat/completions")
    async def completions(body: dict):
        seen.append(body)
        return {"id": "x", "choices": [{"message": {"role": "assistant", "content": "hi from fake"}}]}

    with ThreadedHost(model_app) as model_host:
        @client.create_function(fn_id="infer", trigger=inngest.TriggerEvent(event="t/ai"))
        def infer(ctx: inngest.ContextSync) -> str:
            adapter = ai_openai.Adapter(auth_key="k", model="lab-model", base_url=model_host.url + "/v1")
            res = ctx.step.ai.infer("ask", adapter=adapter, body={"messages": [{"role": "user", "content": "hi"}]})
            return res["choices"][0]["message"]["content"]

        with serving(fresh_engine, client, [infer]):
            result = wait_run_for_event(fresh_engine, send(fresh_engine, "t/ai"))
            assert result["output"] == "hi from fake"
            assert seen[0]["model"] == "lab-model"


def test_bad_inputs_get_4xx_and_store_nothing(fresh_engine):
    url = fresh_engine.url
    cases = [b"{not json", b'{"data": {}}', b'{"name": ""}', b'{"name": "inngest/function.failed"}',
             b'{"name": "Inngest/x"}', b'[{"name": "ok"}, {"name": "a", "data": [1]}]',
             b'{"name": "a", "ts": 5}', b'"a string"']
    for body in cases:
        r = httpx.post(url + "/e/key", content=body)
        assert r.status_code == 400, body
        assert r.json()["error"], body
    assert httpx.get(url + "/v1/events").json()["data"] == [], "nothing stored"
    assert httpx.post(url + "/fn/register", content=b"nope").status_code == 400
    bad_fn = {"appname": "bad", "url": "http://127.0.0.1:1/api/inngest", "functions": [{
        "id": "bad-f", "name": "f", "triggers": [{"cron": "not a cron"}],
        "steps": {"step": {"id": "step", "name": "step", "runtime": {"type": "http", "url": "http://127.0.0.1:1/x"}}}}]}
    r = httpx.post(url + "/fn/register", json=bad_fn)
    assert r.status_code == 400 and "invalid cron" in r.json()["error"]
    bad_fn["functions"][0]["triggers"] = [{"event": "a"}]
    bad_fn["functions"][0]["surprise"] = {"x": 1}
    r = httpx.post(url + "/fn/register", json=bad_fn)
    assert r.status_code == 400 and "unsupported option" in r.json()["error"]
    assert httpx.post(url + "/lab/v1/clock/advance", json={"duration": "soon"}).status_code == 400
    assert httpx.post(url + "/lab/v1/chaos", json={"function": "f", "step": "s", "mode": "x"}).status_code == 400
    assert httpx.get(url + "/v1/runs/notaulid").json()["status"] == 400


def test_wait_expression_that_fails_fails_the_run(fresh_engine, client):
    @client.create_function(fn_id="badwait", trigger=inngest.TriggerEvent(event="t/badwait"))
    def badwait(ctx: inngest.ContextSync) -> None:
        ctx.step.wait_for_event("w", event="t/x", if_exp="async.data.(((", timeout=60_000)

    with serving(fresh_engine, client, [badwait]):
        result = wait_run_for_event(fresh_engine, send(fresh_engine, "t/badwait"))
        assert result["status"] == "Failed"
        assert "invalid expression" in result["output"]["message"]


def test_host_down_mid_run_resumes_when_back(fresh_engine, client):
    gate = threading.Event()
    calls = {"first": 0, "second": 0}

    @client.create_function(fn_id="crashy", trigger=inngest.TriggerEvent(event="t/crash"))
    def crashy(ctx: inngest.ContextSync) -> str:
        ctx.step.run("first", lambda: calls.__setitem__("first", calls["first"] + 1))
        ctx.step.sleep("pause", datetime.timedelta(minutes=5))
        ctx.step.run("second", lambda: calls.__setitem__("second", calls["second"] + 1))
        return "survived"

    app = FastAPI()
    inngest.fast_api.serve(app, client, [crashy])
    host = ThreadedHost(app).start()
    port = host.port
    from engine_helpers import sync
    sync(fresh_engine, host.url + "/api/inngest")
    httpx.post(fresh_engine.url + "/lab/v1/clock/auto", json={"enabled": False})
    eid = send(fresh_engine, "t/crash")
    wait_for(lambda: calls["first"] == 1, 10, "the first step")
    host.stop()                                  # the app dies while the run sleeps
    advance(fresh_engine, duration="10m")        # wake-up finds nobody home
    runs = wait_for(lambda: event_runs(fresh_engine, eid), 5, "the run")
    wait_for(lambda: run(fresh_engine, runs[0]["run_id"])["status"] == "Running", 5, "still running")
    host = ThreadedHost(app, port=port).start()  # the app comes back on the same URL
    try:
        result = wait_run_for_event(fresh_engine, eid, timeout=60)
        assert result["status"] == "Completed" and result["output"] == "survived"
        assert calls == {"first": 1, "second": 1}
    finally:
        host.stop()
        gate.set()
