"""Decision 7: the HITL escalation gate. All four branches write the right audit rows; an
escalating email reaches the gate through an idempotent event."""

from __future__ import annotations

import pytest

from customer_data_mcp import store
from worker_helpers import engine_json, wait_until

# The Worker fixtures (worker_db, envelope, ...) with one Postgres for the whole session.
pytest_plugins = ["worker_helpers"]

REQUEST = "customer/escalation.requested"
DECISION = "escalation/decision.made"
GATE = "chat-agent-escalate-with-human-approval"


def _open_gate(envelope, request_id: str, customer_id: str = "c-4429") -> str:
    """Send an escalation request and wait until its run is suspended at the gate."""
    internal_id = envelope.send(REQUEST, {"request_id": request_id, "customer_id": customer_id,
                                          "reason": "chargeback",
                                          "summary": f"Summary for {request_id}",
                                          "draft": f"Draft for {request_id}"}, request_id)
    run = wait_until(lambda: envelope.runs_of_event(internal_id), timeout=60,
                     message=f"a gate run for {request_id}")[0]
    wait_until(lambda: any(s["name"] == "wait-for-decision"
                           for s in envelope.trace(run["run_id"])),
               timeout=120, message=f"run for {request_id} to reach wait-for-decision")
    reviews = [o for o in store.outbox("escalations-review")
               if o["payload"].get("request_id") == request_id]
    assert len(reviews) == 1 and f"Draft for {request_id}" in reviews[0]["message"]
    return run["run_id"]


def _posts(request_id: str) -> list[dict]:
    return [o for o in store.outbox("senior-support")
            if o["payload"].get("request_id") == request_id]


def _audit(action: str, request_id: str) -> list[dict]:
    return [r for r in store.audit_rows(action) if r["payload"].get("request_id") == request_id]


@pytest.mark.parametrize("decision, action, posted", [
    ({"decision": "approve", "reviewer": "alice"}, "escalation_approved", "Draft for r-approve"),
    ({"decision": "edit", "reviewer": "bob", "edited_text": "Edited by Bob"},
     "escalation_edited", "Edited by Bob"),
    ({"decision": "reject", "reviewer": "carol"}, "escalation_rejected", None),
])
def test_reviewer_decisions(envelope, decision, action, posted):
    request_id = f"r-{decision['decision']}"
    run_id = _open_gate(envelope, request_id)
    # A decision for another request must not open this gate.
    envelope.send(DECISION, {"request_id": "r-someone-else", "decision": "approve",
                             "reviewer": "mallory"}, f"d-other-{request_id}")
    envelope.send(DECISION, {"request_id": request_id, **decision}, f"d-{request_id}")
    run = envelope.wait_run(run_id)
    assert run["status"] == "Completed", run
    rows = _audit(action, request_id)
    assert len(rows) == 1 and rows[0]["payload"]["reviewer"] == decision["reviewer"]
    if decision["decision"] == "edit":
        assert rows[0]["payload"]["edited_text"] == "Edited by Bob"
    posts = _posts(request_id)
    assert [p["message"] for p in posts] == ([posted] if posted else [])
    assert not _audit("escalation_posted_via_timeout", request_id)


def test_unknown_decision_fails_clearly_without_audit(envelope):
    run_id = _open_gate(envelope, "r-bogus")
    envelope.send(DECISION, {"request_id": "r-bogus", "decision": "maybe", "reviewer": "x"},
                  "d-r-bogus")
    run = envelope.wait_run(run_id)
    assert run["status"] == "Failed" and "'maybe'" in str(run["output"])
    assert not [r for r in store.audit_rows() if r["payload"].get("request_id") == "r-bogus"
                and r["action"].startswith("escalation_")]
    assert not _posts("r-bogus")


def test_escalating_email_opens_the_gate_once_even_when_replayed(envelope):
    body = "I am filing a chargeback with my bank today."
    first = envelope.send("customer/email.received", {"customer_id": "c-test-4", "body": body},
                          "email-chargeback")
    run = envelope.wait_event_run(first)
    assert run["status"] == "Completed"
    # Replay the whole email run: the agent asks for the same escalation again, and the
    # request's event id (its idempotency key) keeps it to one gate run.
    rerun_id = envelope.gql("mutation($id:ULID!){ rerun(runID:$id) }",
                            id=run["run_id"])["rerun"]
    assert envelope.wait_run(rerun_id)["status"] == "Completed"
    wait_until(lambda: [o for o in store.outbox("escalations-review")
                        if o["customer_id"] == "c-test-4"],
               timeout=120, message="the escalation gate to notify the reviewer")

    def gate_runs_for_customer():
        runs = [r for r in envelope.lab_runs(GATE) if r["event_name"] == REQUEST]
        return [r for r in runs if "c-test-4" in str(envelope.gql(
            "query($id:String!){ runTrigger(runID:$id){ payloads } }", id=r["run_id"]))]

    assert len(gate_runs_for_customer()) == 1
    assert len(store.audit_rows("email_drafted", "c-test-4")) == 2  # two runs, two drafts
    reviews = [o for o in store.outbox("escalations-review") if o["customer_id"] == "c-test-4"]
    assert len(reviews) == 1


def test_timeout_branch_is_audited_and_posts_with_a_warning(envelope):
    run_id = _open_gate(envelope, "r-timeout", customer_id="c-test-5")
    engine_json(envelope.engine.url, "POST", "/lab/v1/clock/advance",
                json={"seconds": 4 * 3600 + 60})
    run = envelope.wait_run(run_id)
    assert run["status"] == "Completed", run
    assert run["output"]["status"] == "posted_via_timeout"
    rows = _audit("escalation_posted_via_timeout", "r-timeout")
    assert len(rows) == 1 and rows[0]["payload"]["reviewer"] == "timeout"
    assert rows[0]["customer_id"] == "c-test-5"
    posts = _posts("r-timeout")
    assert len(posts) == 1 and posts[0]["message"].startswith("[NO HUMAN REVIEW")


def test_reviewer_button_endpoint_decides_once(envelope):
    import httpx

    run_id = _open_gate(envelope, "r-button")
    url = envelope.host.url + "/admin/escalations/r-button/decision"
    bad = httpx.post(url, json={"decision": "approve"}, timeout=30)
    assert bad.status_code == 400 and "reviewer" in bad.json()["error"]
    first = httpx.post(url, json={"decision": "approve", "reviewer": "dave"}, timeout=30)
    second = httpx.post(url, json={"decision": "reject", "reviewer": "erin"}, timeout=30)
    assert first.json()["event_id"] == second.json()["event_id"] == "decision-r-button"
    run = envelope.wait_run(run_id)
    assert run["output"]["status"] == "posted"
    rows = _audit("escalation_approved", "r-button")
    assert [r["payload"]["reviewer"] for r in rows] == ["dave"]
    assert not _audit("escalation_rejected", "r-button")
