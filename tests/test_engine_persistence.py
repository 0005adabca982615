"""State survives the engine: a restarted engine resumes sleeping and waiting runs; with a
signing key, requests to the app are signed and the SDK in cloud mode accepts them."""

from __future__ import annotations

import datetime
import os

import httpx
import inngest
import inngest.fast_api
from fastapi import FastAPI

from engine_helpers import advance, event_runs, make_client, send, sync, wait_for, wait_run_for_event
from lab_support.engine_process import EngineProcess
from lab_support.host import ThreadedHost


def test_restarted_engine_resumes_sleeping_and_waiting_runs(tmp_path):
    state = str(tmp_path / "engine")
    eng = EngineProcess(state_dir=state, extra_args=("--no-auto-advance",)).start()
    client = make_client(eng, "persist")
    calls = []

    @client.create_function(fn_id="slow", trigger=inngest.TriggerEvent(event="p/slow"))
    def slow(ctx: inngest.ContextSync) -> str:
        ctx.step.run("before", lambda: calls.append("before"))
        ctx.step.sleep("long-nap", datetime.timedelta(days=2))
        ctx.step.run("after", lambda: calls.append("after"))
        return "resumed"

    @client.create_function(fn_id="gate", trigger=inngest.TriggerEvent(event="p/gate"))
    def gate(ctx: inngest.ContextSync) -> str:
        ev = ctx.step.wait_for_event("ok", event="p/ok", timeout=datetime.timedelta(hours=4))
        return ev.data["who"] if ev else "timeout"

    app = FastAPI()
    inngest.fast_api.serve(app, client, [slow, gate])
    host = ThreadedHost(app).start()
    port = eng.port
    try:
        sync(eng, host.url + "/api/inngest")
        sleeping = send(eng, "p/slow")
        waiting = send(eng, "p/gate")
        wait_for(lambda: calls == ["before"], 10, "the first step")
        wait_for(lambda: event_runs(eng, waiting), 10, "the waiting run")
        clock_before = httpx.get(eng.url + "/lab/v1/clock").json()["now_ms"]
        eng.stop()                                   # the engine goes away mid-run

        eng = EngineProcess(port=port, state_dir=state, extra_args=("--no-auto-advance",)).start()
        clock_after = httpx.get(eng.url + "/lab/v1/clock").json()["now_ms"]
        assert clock_after >= clock_before, "virtual time never goes backwards"
        assert event_runs(eng, sleeping)[0]["status"] == "Running"
        advance(eng, duration="3d")
        assert wait_run_for_event(eng, sleeping)["output"] == "resumed"
        assert calls == ["before", "after"]
        r = httpx.post(eng.url + "/e/k", json={"name": "p/ok", "data": {"who": "ana"}})
        assert r.status_code == 200
        # The wait's deadline passed with the 3-day advance: the timeout branch ran.
        assert wait_run_for_event(eng, waiting)["output"] == "timeout"
    finally:
        host.stop()
        eng.stop()


def test_signed_requests_with_a_signing_key():
    """With INNGEST_SIGNING_KEY the engine acts like a self-hosted (cloud-kind) server:
    registration needs the bearer token, and every request to the app is signed. A
    production-mode SDK rejects unsigned requests, so a completed run proves the signature."""
    key = "signkey-test-" + "ab" * 32
    eng = EngineProcess(memory=True, env={**os.environ, "INNGEST_SIGNING_KEY": key}).start()
    try:
        client = inngest.Inngest(app_id="signed", is_production=True, signing_key=key,
                                 event_key="k", api_base_url=eng.url, event_api_base_url=eng.url)

        @client.create_function(fn_id="hi", trigger=inngest.TriggerEvent(event="s/hi"))
        def hi(ctx: inngest.ContextSync) -> str:
            return "signed ok"

        app = FastAPI()
        inngest.fast_api.serve(app, client, [hi])
        with ThreadedHost(app) as host:
            reg = httpx.post(eng.url + "/fn/register", json={"appname": "x", "functions": []})
            assert reg.status_code == 401, "registration without the bearer token is refused"
            sync(eng, host.url + "/api/inngest")
            ids = client.send_sync(inngest.Event(name="s/hi"))
            result = wait_run_for_event(eng, ids[0])
            assert result["status"] == "Completed" and result["output"] == "signed ok", result
    finally:
        eng.stop()
