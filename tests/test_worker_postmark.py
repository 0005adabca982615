"""The Postmark-to-event transform and its webhook endpoint (no engine needed for bad input)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from chat_agent.inngest_client import make_client
from chat_agent.postmark import PostmarkPayloadError, postmark_to_event
from chat_agent.serve import create_app
from worker_helpers import query

# The Worker fixtures (worker_db, envelope, ...) with one Postgres for the whole session.
pytest_plugins = ["worker_helpers"]

PAYLOAD = {"From": "Ayesha Khan <c-4429@example.com>", "Subject": "Refund",
           "TextBody": "Where is my refund?", "Date": "Tue, 24 Nov 2026 09:15:00 +0500",
           "MessageID": "a8c1-44"}


def lookup(email):
    if email == "c-4429@example.com":
        return {"id": "c-4429"}
    raise LookupError(f"No customer with email {email!r}")


def test_transform_maps_every_field():
    event = postmark_to_event(PAYLOAD, lookup)
    assert event == {"name": "customer/email.received", "id": "postmark-a8c1-44",
                     "data": {"customer_id": "c-4429", "body": "Where is my refund?",
                              "subject": "Refund", "received_at": "2026-11-24T09:15:00+05:00",
                              "from": "c-4429@example.com", "message_id": "a8c1-44"}}
    full = {**PAYLOAD, "From": "garbage", "FromFull": {"Email": "c-4429@example.com"}}
    assert postmark_to_event(full, lookup)["data"]["customer_id"] == "c-4429"


@pytest.mark.parametrize("change, message", [
    ({"MessageID": ""}, "MessageID"),
    ({"TextBody": "  "}, "TextBody"),
    ({"Date": "yesterday"}, "RFC 2822"),
    ({"From": "no address here"}, "From"),
    ({"Subject": 5}, "Subject"),
])
def test_transform_rejects_malformed_payloads(change, message):
    with pytest.raises(PostmarkPayloadError, match=message):
        postmark_to_event({**PAYLOAD, **change}, lookup)
    with pytest.raises(PostmarkPayloadError, match="JSON object"):
        postmark_to_event(["not", "a", "dict"], lookup)


def test_webhook_rejects_bad_input_and_writes_nothing(worker_db):
    # The client points at a closed port: a send attempt would fail loudly, so a 4xx here
    # also proves nothing was sent.
    client = TestClient(create_app(make_client("http://127.0.0.1:9")), base_url="http://127.0.0.1")
    before = query(worker_db, "SELECT count(*) AS n FROM audit_log")[0]["n"]
    response = client.post("/webhooks/postmark", content=b"{not json")
    assert response.status_code == 400 and "not JSON" in response.json()["error"]
    response = client.post("/webhooks/postmark", json={**PAYLOAD, "TextBody": ""})
    assert response.status_code == 400 and "TextBody" in response.json()["error"]
    response = client.post("/webhooks/postmark",
                           json={**PAYLOAD, "From": "stranger@example.org"})
    assert response.status_code == 422 and "stranger@example.org" in response.json()["error"]
    assert query(worker_db, "SELECT count(*) AS n FROM audit_log")[0]["n"] == before
