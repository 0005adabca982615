"""M11 (and M12, M20 through the lab): ``lab.start(app=chat_agent.serve.create_app())`` serves
the whole Worker host, webhook and reviewer routes included, from the lab's thread host, with
trace, wait, clock and chaos working; the app was built before the lab chose its engine."""

from __future__ import annotations

import os
from datetime import datetime, timezone

import httpx
import inngest
import inngest.fast_api
import pytest
from fastapi import FastAPI

from chat_agent.serve import create_app
from customer_data_mcp import store
from lab_support.lab_object import Lab
from lab_support.worker_host import SyncedFunction
from worker_helpers import wait_until

# The Worker fixtures (worker_db, envelope, ...) with one Postgres for the whole session.
pytest_plugins = ["worker_helpers"]
pytestmark = pytest.mark.timeout(300)

WORKER_FUNCTIONS = {"chat-agent-handle-customer-email", "chat-agent-daily-customer-health-check",
                    "chat-agent-process-customer-health-check",
                    "chat-agent-escalate-with-human-approval"}
ENV = ("INNGEST_DEV", "WORKER_CLOCK_URL", "CHAT_AGENT_MODEL_URL")


@pytest.fixture(scope="module")
def lab(engine, worker_db):
    before = {name: os.environ.get(name) for name in ENV}
    app = create_app()  # built first: its client must still find the engine started below
    the_lab = Lab()
    the_lab.start(app=app, engine=engine.url, quiet=True)
    try:
        yield the_lab
    finally:
        the_lab.stop()
        assert {name: os.environ.get(name) for name in ENV} == before


def _postmark(message_id: str, sender: str = "c-test-1@example.com") -> dict:
    return {"From": f"Someone <{sender}>", "Subject": "Refund", "Date":
            "Tue, 24 Nov 2026 09:15:00 +0000", "MessageID": message_id,
            "TextBody": "Hi, my refund hasn't arrived and I'm getting worried."}


def test_the_app_is_served_synced_and_pointed_at_the_lab(lab, engine):
    assert lab.app_id == "chat-agent"
    assert {f.id for f in lab.functions} == WORKER_FUNCTIONS
    assert set(lab.status()["functions"]) == WORKER_FUNCTIONS
    assert os.environ["INNGEST_DEV"] == engine.url != "http://127.0.0.1:8288"
    assert os.environ["WORKER_CLOCK_URL"] == engine.url + "/lab/v1/clock"
    assert os.environ["CHAT_AGENT_MODEL_URL"] == lab.model.url
    assert httpx.get(lab.host_url + "/healthz", timeout=10).json()["ok"]


def test_a_postmark_email_runs_and_its_trace_shows_the_model(lab):
    lab.model.reset()
    answer = httpx.post(lab.host_url + "/webhooks/postmark", json=_postmark("lab-pm-1"),
                        timeout=60)
    assert answer.status_code == 200, answer.text
    run = lab.wait(answer.json()["internal_ids"][0], timeout=180)
    assert run["status"] == "COMPLETED", run
    trace = lab.trace(run["id"]).set_index("step")
    assert trace.loc["run-agent", "model"].startswith("offline-lab-model · ")
    assert "in /" in trace.loc["run-agent", "model"]
    usage = lab.model.usage()
    assert usage.ok >= 1 and {r["caller"] for r in usage.rows} == {"agents-sdk"}
    rows = store.audit_rows("email_drafted", "c-test-1")
    assert rows[-1]["payload"]["event_id"] == "postmark-lab-pm-1"
    lanes = lab.watch([run["id"]], lane="event.data.customer_id", timeout=30)
    assert [lane.lane for lane in lanes] == ["c-test-1"]


def test_chaos_retries_the_agent_step_of_the_served_app(lab):
    lab.chaos.fail_step("handle-customer-email", "run-agent", times=1)
    try:
        run = lab.wait(lab.send("customer/email.received",
                                {"customer_id": "c-test-2", "body": "Is my invoice right?"},
                                id="lab-chaos-1"), timeout=180)
    finally:
        lab.chaos.clear()
    assert run["status"] == "COMPLETED"
    trace = lab.trace(run["id"]).set_index("step")
    assert trace.loc["run-agent", "attempts"] == 2 and trace.loc["run-agent", "source"] == "retried"


def test_the_reviewer_route_refuses_other_sites_and_takes_the_lab_origin(lab):
    request_id = "r-lab-gate"
    run = lab.wait(lab.send("customer/escalation.requested", {
        "request_id": request_id, "customer_id": "c-4429", "reason": "chargeback",
        "summary": "The bank opened a chargeback.", "draft": "Draft for the reviewer"},
        id=request_id), status="RUNNING", timeout=120)
    wait_until(lambda: "wait-for-decision" in set(lab.trace(run["id"])["step"]), timeout=120,
               message="the run to reach its human gate")
    url = f"{lab.host_url}/admin/escalations/{request_id}/decision"
    decision = {"decision": "approve", "reviewer": "alice"}
    refused = httpx.post(url, json=decision, headers={"Origin": "https://evil.example"},
                         timeout=30)
    assert refused.status_code == 403
    assert lab.run(run["id"])["status"] == "RUNNING"  # nothing was approved
    taken = httpx.post(url, json=decision, headers={"Origin": lab.host_url}, timeout=60)
    assert taken.status_code == 200, taken.text
    done = lab.wait(run["id"], timeout=120)
    assert done["status"] == "COMPLETED" and '"posted"' in done["output"]


def test_advancing_the_engine_clock_ages_the_workers_customers(lab):
    # The 09:00 cron fires inside a multi-day jump; keep it from fanning out to every
    # customer (chaos fails its first step), this test is about the store's notion of now.
    lab.chaos.fail_step("daily-customer-health-check", "fetch-eligible-customers", times=200)
    try:
        store.mark_outreach("c-test-4")  # stamped with the engine's now
        assert "c-test-4" not in {c["id"] for c in store.list_customers(["enterprise"], 7)}
        before = lab.clock.now()
        lab.clock.advance("8d")
        assert "c-test-4" in {c["id"] for c in store.list_customers(["enterprise"], 7)}
        stamped = datetime.fromisoformat(store.record_audit("clock_checked",
                                                            "c-test-4")["created_at"])
        assert (stamped - before).total_seconds() >= 8 * 86400  # dated on the engine's clock
        # (The engine clock may have moved on since: retry backoffs of the failing cron runs.)
        assert stamped <= lab.clock.now()
        assert (stamped - datetime.now(timezone.utc)).total_seconds() > 7 * 86400  # not wall
    finally:
        lab.chaos.clear()
        lab.bulk_cancel("daily-customer-health-check")


def test_update_swaps_the_app_and_a_plain_app_is_learned_from_the_engine(lab, engine):
    host_url = lab.host_url
    lab.update(app=create_app())
    assert lab.host_url == host_url and {f.id for f in lab.functions} == WORKER_FUNCTIONS
    with pytest.raises(ValueError, match="lab.update\\(app=new_app\\)"):
        lab.update([])

    client = inngest.Inngest(app_id="plain", is_production=False)

    @client.create_function(fn_id="echo", trigger=inngest.TriggerEvent(event="plain/echo"))
    async def echo(ctx: inngest.Context) -> dict:
        return await ctx.step.run("echo", lambda: dict(ctx.event.data))

    plain = FastAPI()
    inngest.fast_api.serve(plain, client, [echo])
    other = Lab()
    try:
        other.start(app=plain, engine=engine.url, quiet=True)
        assert other.app_id == "plain"
        assert other.functions == [SyncedFunction("plain-echo", "echo")]
        run = other.wait(other.send("plain/echo", {"n": 1}), timeout=60)
        assert run["status"] == "COMPLETED" and '"n": 1' in run["output"]
    finally:
        other.stop()


def test_app_mode_refuses_what_it_cannot_do(lab):
    with pytest.raises(ValueError, match="host='thread'"):
        Lab().start(app=create_app(), host="process")
    with pytest.raises(ValueError, match="not both"):
        Lab().start([], app=create_app())
    with pytest.raises(TypeError, match="ASGI"):
        Lab().start(app="chat_agent.serve:app")
