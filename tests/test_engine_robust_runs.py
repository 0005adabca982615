"""Issue #9, finding 6 and the signing half of 9: a reply the engine cannot use fails the run
with the reason; loops an app can start (planning forever, invoking itself) are bounded.

Misbehaving apps are small FastAPI apps that answer like an SDK (``x-inngest-sdk``) but with
what the findings saw; the self-invoking function is the real SDK's ``step.invoke``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
import time

import httpx
import inngest
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from engine_helpers import make_client, send, serving, wait_run, wait_run_for_event
from lab_support.devserver import limits
from lab_support.engine_process import EngineProcess
from lab_support.host import ThreadedHost

SDK = {"x-inngest-sdk": "inngest-py:v0.5.19"}


class FakeApp:
    """An app whose answer to each execution request is ``answer(body, calls)``."""

    def __init__(self, answer) -> None:
        self.calls = 0
        self.lock = threading.Lock()
        app = FastAPI()

        @app.post("/api/inngest")
        async def execute(request: Request):
            body = json.loads(await request.body())
            with self.lock:
                self.calls += 1
                calls = self.calls
            return answer(body, calls)

        self.host = ThreadedHost(app)

    def __enter__(self) -> "FakeApp":
        self.host.start()
        return self

    def __exit__(self, *exc) -> None:
        self.host.stop()

    def register(self, engine, slug: str, headers: dict | None = None) -> None:
        url = f"{self.host.url}/api/inngest?fnId={slug}&stepId=step"
        fn = {"id": slug, "name": slug, "triggers": [{"event": f"fake/{slug}"}],
              "steps": {"step": {"id": "step", "name": "step", "retries": {"attempts": 0},
                                 "runtime": {"type": "http", "url": url}}}}
        r = httpx.post(engine.url + "/fn/register", timeout=10, headers=headers or {},
                       json={"appname": f"app-{slug}", "url": self.host.url + "/api/inngest",
                             "functions": [fn]})
        assert r.status_code == 200, r.text


def ops(*items: dict) -> JSONResponse:
    return JSONResponse(list(items), status_code=206, headers=SDK)


def planned(step: str) -> dict:
    return {"op": "StepPlanned", "id": hashlib.sha1(step.encode()).hexdigest(), "name": step,
            "displayName": step, "opts": None, "data": None,
            "userland": {"id": step, "index": None}}


def ran(step: str, data) -> dict:
    return dict(planned(step), op="StepRun", data=data)


def failed_with(engine, event_id: str, *phrases: str) -> dict:
    run = wait_run_for_event(engine, event_id, timeout=60)
    message = json.dumps(run.get("output"))
    assert run["status"] == "Failed" and all(p in message for p in phrases), run
    return run


# -- replies without anything to do --------------------------------------------------------
@pytest.mark.parametrize("reply, shown", [
    (lambda: Response("[]", status_code=206, headers=SDK), "an empty list"),
    (lambda: Response("null", status_code=206, headers=SDK), "null"),
    (lambda: Response("working on it", status_code=206, headers=SDK), "working on it"),
    (lambda: Response('[{"op": "StepRun"}]', status_code=206, headers=SDK), "'op' and 'id'"),
    (lambda: Response('[{"op": "StepRun", "id": "a", "data": NaN}]', status_code=206,
                      headers=SDK), "NaN"),
])
def test_a_206_without_operations_fails_the_run(engine, reply, shown):
    slug = f"empty-{abs(hash(shown)) % 10**6}"
    with FakeApp(lambda body, calls: reply()) as app:
        app.register(engine, slug)
        failed_with(engine, send(engine, f"fake/{slug}"), shown)


def test_too_many_operations_in_one_answer_fail_the_run(engine):
    too_many = [planned(f"p{i}") for i in range(limits.MAX_OPS_PER_REPLY + 1)]
    with FakeApp(lambda body, calls: ops(*too_many)) as app:
        app.register(engine, "too-many-ops")
        failed_with(engine, send(engine, "fake/too-many-ops"), "over the limit of 1000")


# -- reply size ----------------------------------------------------------------------------
def _string_of(size: int) -> bytes:
    return b'"' + b"x" * (size - 2) + b'"'


def test_an_answer_at_the_size_limit_is_used(engine):
    exact = _string_of(limits.SDK_REPLY_MAX_BYTES)
    with FakeApp(lambda body, calls: Response(exact, headers=SDK)) as app:
        app.register(engine, "reply-at-limit")
        run = wait_run_for_event(engine, send(engine, "fake/reply-at-limit"), timeout=60)
        assert run["status"] == "Completed" and len(run["output"]) == len(exact) - 2


def test_an_answer_over_the_size_limit_is_not_read_in_full(engine):
    chunk = b"x" * (1024 * 1024)
    sent = []

    def huge(body, calls):               # 300 MB if anyone read it all; no Content-Length
        def stream():
            yield b'"'
            for _ in range(300):
                sent.append(1)
                yield chunk
        return StreamingResponse(stream(), headers=SDK)

    with FakeApp(huge) as app:
        app.register(engine, "reply-too-big")
        failed_with(engine, send(engine, "fake/reply-too-big"), "larger than the limit")
    assert len(sent) < 300, "the engine stopped reading, so the app stopped sending"


def test_a_sync_answer_over_its_limit_is_refused(engine):
    app = FastAPI()

    @app.put("/api/inngest")
    def put():
        return Response(b'{"ok": true, "pad": "' + b"x" * limits.SYNC_REPLY_MAX_BYTES + b'"}',
                        headers=SDK)

    with ThreadedHost(app) as host:
        r = httpx.post(engine.url + "/lab/v1/sync", json={"url": host.url + "/api/inngest"},
                       timeout=30)
    assert r.status_code == 400 and "over the limit" in r.json()["error"], r.text


# -- planning loops ------------------------------------------------------------------------
def _plan_then_run(times: int):
    def answer(body, calls):
        if body["steps"]:
            return Response('"done"', headers=SDK)
        if calls <= times:
            return ops(planned("s"))
        return ops(ran("s", 1))
    return answer


def test_a_step_planned_up_to_the_limit_still_runs(engine):
    with FakeApp(_plan_then_run(limits.MAX_PLANS_PER_STEP)) as app:
        app.register(engine, "plans-at-limit")
        run = wait_run_for_event(engine, send(engine, "fake/plans-at-limit"), timeout=60)
        assert run["status"] == "Completed" and run["output"] == "done", run


def test_a_step_planned_forever_fails_the_run(engine):
    with FakeApp(lambda body, calls: ops(planned("s"))) as app:
        app.register(engine, "plans-forever")
        failed_with(engine, send(engine, "fake/plans-forever"), "planned 11 times")
        assert app.calls == limits.MAX_PLANS_PER_STEP + 1


@pytest.mark.slow
def test_plans_cycling_over_many_steps_fail_the_run(engine):
    """Each of 250 steps planned in turn stays under the per-step bound; the run bound ends it."""
    with FakeApp(lambda body, calls: ops(planned(f"s{calls % 250}"))) as app:
        app.register(engine, "plans-cycle")
        failed_with(engine, send(engine, "fake/plans-cycle"), "planned 2001 times")
        assert app.calls == limits.MAX_PLANS_PER_RUN + 1


# -- invoking itself -----------------------------------------------------------------------
def _self_invoker(engine, app_id: str, stop_at: int):
    client = make_client(engine, app_id)

    @client.create_function(fn_id="again", retries=0,
                            trigger=inngest.TriggerEvent(event=f"{app_id}/go"))
    async def again(ctx: inngest.Context) -> int:
        n = ctx.event.data.get("n", 0)
        if n >= stop_at:
            return n
        return await ctx.step.invoke("deeper", function=again, data={"n": n + 1})

    return client, again


def _runs_of(engine, slug: str) -> list[dict]:
    return httpx.get(engine.url + "/lab/v1/runs", params={"function": slug}, timeout=10
                     ).json()["data"]


def test_an_invoke_chain_at_the_depth_limit_completes(engine):
    client, again = _self_invoker(engine, "invoke-at-limit", limits.MAX_INVOKE_DEPTH)
    with serving(engine, client, [again]):
        run = wait_run_for_event(engine, send(engine, "invoke-at-limit/go"), timeout=60)
        assert run["status"] == "Completed" and run["output"] == limits.MAX_INVOKE_DEPTH
        assert len(_runs_of(engine, "invoke-at-limit-again")) == limits.MAX_INVOKE_DEPTH + 1


def test_a_function_invoking_itself_forever_stops_at_the_depth_limit(engine):
    client, again = _self_invoker(engine, "invoke-forever", 10**9)
    with serving(engine, client, [again]):
        root = failed_with(engine, send(engine, "invoke-forever/go"), "invoke depth limit")
        runs = _runs_of(engine, "invoke-forever-again")
        assert len(runs) == limits.MAX_INVOKE_DEPTH + 1
        for r in runs:
            wait_run(engine, r["run_id"], "Failed", timeout=30)
        assert root["run_id"] in {r["run_id"] for r in runs}


# -- signing-key mode: answers must be signed --------------------------------------------
def _signature(body: bytes, key: str) -> str:
    secret = key.split("-", 2)[2].encode()
    t = int(time.time())
    return f"t={t}&s={hmac.new(secret, body + str(t).encode(), hashlib.sha256).hexdigest()}"


def test_signing_key_mode_refuses_a_forged_answer():
    key = "signkey-test-" + "cd" * 32
    eng = EngineProcess(memory=True, env={**os.environ, "INNGEST_SIGNING_KEY": key}).start()
    bearer = {"authorization": "Bearer " + hashlib.sha256(bytes.fromhex("cd" * 32)).hexdigest()}
    body = b'"the real answer"'
    try:
        signed = FakeApp(lambda b, c: Response(body, headers={
            **SDK, "x-inngest-signature": _signature(body, key)}))
        forged = FakeApp(lambda b, c: Response(b'"forged"', headers={
            **SDK, "x-inngest-signature": _signature(body, key)}))   # another body's MAC
        unsigned = FakeApp(lambda b, c: Response(b'"unsigned"', headers=SDK))
        with signed, forged, unsigned:
            signed.register(eng, "signed", bearer)
            forged.register(eng, "forged", bearer)
            unsigned.register(eng, "unsigned", bearer)
            good = wait_run_for_event(eng, send(eng, "fake/signed"), timeout=30)
            assert good["status"] == "Completed" and good["output"] == "the real answer"
            for slug in ("forged", "unsigned"):
                run = failed_with(eng, send(eng, f"fake/{slug}"), "not signed")
                assert run["output"] != slug
    finally:
        eng.stop()
