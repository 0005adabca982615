"""Issue #9 §14 and the Worker-host part of §8: bad input never reaches Postgres as a raw
driver error, never burns retries, and the webhook / reviewer routes answer clearly (4xx, 503)
and refuse foreign origins and hosts."""

from __future__ import annotations

import asyncio
import math

import httpx
import pytest
from fastapi.testclient import TestClient

from chat_agent.inngest_client import make_client
from chat_agent.serve import create_app
from customer_data_mcp import store
from customer_data_mcp.client import CustomerData, ToolCallError, ToolInputError
from worker_helpers import query

# The Worker fixtures (worker_db, envelope, ...) with one Postgres for the whole session.
pytest_plugins = ["worker_helpers"]

TABLES = ("audit_log", "drafts", "messages", "outbox", "customers")
PAYLOAD = {"From": "Ayesha Khan <c-4429@example.com>", "Subject": "Refund",
           "TextBody": "Where is my refund?", "Date": "Tue, 24 Nov 2026 09:15:00 +0500",
           "MessageID": "robust-1"}


def _deep(levels: int) -> dict:
    value: dict = {}
    for _ in range(levels):
        value = {"x": value}
    return value


def _counts(url) -> dict:
    return {t: query(url, f"SELECT count(*) AS n FROM {t}")[0]["n"] for t in TABLES}


@pytest.mark.parametrize("call, words", [
    (lambda: store.save_draft_reply("c-test-1", "nul \x00 byte"), "NUL"),
    (lambda: store.save_draft_reply("c-test-1", "lone \ud800 surrogate"), "surrogate"),
    (lambda: store.save_draft_reply("c-test-1", "ok", True), "thread_id"),
    (lambda: store.save_draft_reply("c-test-1", "ok", kind=["reply"]), "kind"),
    (lambda: store.save_draft_reply("c-test-1", "ok", meta={"score": math.nan}), "NaN"),
    (lambda: store.record_audit("ok_action", "c-test-1", {"v": float("inf")}), "infinity"),
    (lambda: store.record_audit("ok_action", "c-test-1", {"k": "a\x00b"}), "NUL"),
    (lambda: store.record_audit("ok_action", "c-test-1", {1: "int key"}), "non-string key"),
    (lambda: store.record_audit("ok_action", "c-test-1", _deep(40)), "nested deeper"),
    (lambda: store.record_audit("ok_action", True), "customer_id"),
    (lambda: store.notify("slack", "hi \x00", "c-test-1"), "NUL"),
    (lambda: store.load_customer(True), "customer_id"),
    (lambda: store.load_thread("c-test-1", 12), "thread_id"),
    (lambda: store.find_customer_by_email("c-4429\x00@example.com"), "NUL"),
    (lambda: store.list_customers(limit=True), "limit"),
    (lambda: store.list_customers(tier=5), "tier"),
    (lambda: store.list_customers(outreach_older_than_days=False), "outreach_older_than_days"),
    (lambda: store.recent_activity("c-test-1", days=True), "days"),
    (lambda: store.find_similar_cases("refund \x00"), "NUL"),
    (lambda: store.find_similar_cases("refund", limit=2.5), "limit"),
    (lambda: store.audit_rows(action=True), "action"),
    (lambda: store.outbox(channel=7), "channel"),
])
def test_store_maps_what_postgres_would_reject_to_invalid_input(worker_db, call, words):
    before = _counts(worker_db)
    with pytest.raises(store.InvalidInput, match=words):
        call()
    assert _counts(worker_db) == before


def test_mcp_tools_say_invalid_input_for_bad_arguments(worker_db):
    async def scenario():
        errors = {}
        async with CustomerData() as cd:
            for name, tool, args in [
                    ("bool id", "load_customer", {"customer_id": True}),
                    ("bool limit", "list_customers", {"limit": True}),
                    ("text days", "recent_activity", {"customer_id": "c-test-1", "days": "x"}),
                    ("nul body", "save_draft_reply", {"customer_id": "c-test-1",
                                                      "body": "a\x00b"}),
                    # (NaN cannot be tested here: the MCP client sends it as null.)
                    ("deep payload", "record_audit", {"action": "ok_action",
                                                      "payload": _deep(40)})]:
                with pytest.raises(ToolCallError) as caught:
                    await cd.call(tool, **args)
                errors[name] = caught.value
        return errors

    before = _counts(worker_db)
    errors = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert _counts(worker_db) == before
    for name, error in errors.items():
        assert isinstance(error, ToolInputError), (name, error)  # permanent: never retried
        assert "InvalidInput" in str(error), (name, error)
        assert not str(error).rstrip().endswith("Error executing tool"), (name, error)
    assert "customer_id" in str(errors["bool id"]) and "limit" in str(errors["bool limit"])


def test_envelope_fails_bad_input_at_once_without_retries(envelope, worker_db, monkeypatch):
    notified = []
    real_notify = store.notify
    monkeypatch.setattr(store, "notify", lambda *a, **k: notified.append(a) or real_notify(*a, **k))
    before = _counts(worker_db)
    cases = {
        "nul-body": ("customer/email.received", {"customer_id": "c-test-2", "body": "x\x00y"},
                     "NUL"),
        "bool-id": ("customer/email.received", {"customer_id": True, "body": "hello"},
                    "customer_id"),
        # notify() reaches the store directly (not through MCP): still permanent.
        "ghost-escalation": ("customer/escalation.requested",
                             {"request_id": "r-ghost", "customer_id": "c-ghost",
                              "summary": "s"}, "No customer with id 'c-ghost'"),
    }
    for key, (name, data, words) in cases.items():
        run = envelope.wait_event_run(envelope.send(name, data, f"robust-{key}"))
        assert run["status"] == "Failed", (key, run)
        assert words in str(run["output"]), (key, run["output"])
        assert all(s["attempts"] <= 1 for s in envelope.trace(run["run_id"])), key
    assert len(notified) == 1  # the ghost escalation's notify ran once: no retry was burnt
    assert _counts(worker_db) == before


def _client(app) -> TestClient:
    return TestClient(app, base_url="http://127.0.0.1:8000")


def test_webhook_answers_4xx_for_deep_nan_and_oversized_bodies(worker_db):
    client = _client(create_app(make_client("http://127.0.0.1:9")))
    before = _counts(worker_db)
    deep = "[" * 10_000 + "]" * 10_000
    answer = client.post("/webhooks/postmark", content=deep)
    assert answer.status_code == 400 and "nested deeper" in answer.json()["error"]
    answer = client.post("/webhooks/postmark", json={**PAYLOAD, "Extra": _deep(40)})
    assert answer.status_code == 400 and "nested deeper" in answer.json()["error"]
    answer = client.post("/webhooks/postmark", content=b'{"TextBody": NaN}')
    assert answer.status_code == 400 and "NaN" in answer.json()["error"]
    big = {**PAYLOAD, "TextBody": "x" * 3_200_000}
    answer = client.post("/webhooks/postmark", json=big)
    assert answer.status_code == 413 and "at most" in answer.json()["error"]
    answer = client.post("/webhooks/postmark", json={**PAYLOAD, "TextBody": "a\x00b"})
    assert answer.status_code == 400 and "NUL" in answer.json()["error"]
    answer = client.post("/admin/escalations/r-1/decision", content=deep)
    assert answer.status_code == 400
    assert _counts(worker_db) == before


def test_webhook_and_reviewer_route_answer_503_when_the_engine_is_down(worker_db):
    client = _client(create_app(make_client("http://127.0.0.1:9")))  # nothing listens there
    answer = client.post("/webhooks/postmark", json=PAYLOAD)
    assert answer.status_code == 503, answer.text
    assert "did not answer" in answer.json()["error"] and "127.0.0.1:9" in answer.json()["error"]
    answer = client.post("/admin/escalations/r-1/decision",
                         json={"decision": "approve", "reviewer": "alice"})
    assert answer.status_code == 503 and "retry later" in answer.json()["error"]


@pytest.mark.parametrize("route, body", [
    ("/webhooks/postmark", PAYLOAD),
    ("/admin/escalations/r-1/decision", {"decision": "approve", "reviewer": "mallory"}),
])
def test_foreign_origin_and_host_are_refused_before_any_work(worker_db, route, body):
    client = _client(create_app(make_client("http://127.0.0.1:9")))
    for origin in ("https://evil.example", "null", "http://127.0.0.1.evil.example"):
        answer = client.post(route, json=body, headers={"Origin": origin})
        assert answer.status_code == 403 and "Origin" in answer.json()["error"], origin
    answer = client.post(route, json=body, headers={"Host": "rebound.evil.example:8000"})
    assert answer.status_code == 421 and "Host" in answer.json()["error"]
    # A page on the lab's own loopback origin (the dashboard, a notebook) passes the guard:
    # here it gets as far as the engine, which is down (503), proving it was not refused.
    answer = client.post(route, json=body, headers={"Origin": "http://localhost:8888"})
    assert answer.status_code == 503


def test_the_real_host_refuses_a_cross_origin_post(envelope):
    url = envelope.host.url + "/admin/escalations/r-x/decision"
    answer = httpx.post(url, json={"decision": "approve", "reviewer": "page"},
                        headers={"Origin": "https://attacker.example"}, timeout=10)
    assert answer.status_code == 403
    assert answer.headers.get("access-control-allow-origin") is None
