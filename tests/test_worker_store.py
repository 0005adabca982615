"""The system of record: migrations, seed, the store API and its audit-in-one-transaction rule."""

from __future__ import annotations

import pytest

from customer_data_mcp import migrate, store
from worker_helpers import query

# The Worker fixtures (worker_db, envelope, ...) with one Postgres for the whole session.
pytest_plugins = ["worker_helpers"]


def test_migrations_are_idempotent_and_seed_is_stable(worker_db):
    assert migrate.migrate(worker_db) == []  # already applied by the fixture
    before = migrate.counts(worker_db)
    after = migrate.seed(worker_db)  # seeding twice adds nothing
    assert before == after
    assert 45 <= after["customers"] <= 60
    assert after["ticket_embeddings"] == after["tickets"] >= 15
    ids = {r["id"] for r in query(worker_db, "SELECT id FROM customers")}
    assert {"c-4429", "c-test-1", "c-test-2", "c-test-3", "c-test-4", "c-test-5"} <= ids
    tiers = {r["tier"] for r in query(worker_db, "SELECT DISTINCT tier FROM customers")}
    assert tiers == {"free", "pro", "enterprise"}


def test_load_customer_and_thread(worker_db):
    customer = store.load_customer("c-4429")
    assert customer["tier"] == "enterprise" and customer["email"] == "c-4429@example.com"
    thread = store.load_thread("c-4429")
    assert thread["thread"]["id"] == "t-c-4429"
    assert [m["role"] for m in thread["messages"]][:1] == ["customer"]


def test_list_customers_filters_by_tier_and_outreach_age(worker_db):
    eligible = store.list_customers(["pro", "enterprise"], outreach_older_than_days=7)
    assert eligible and all(c["tier"] in ("pro", "enterprise") for c in eligible)
    recent = query(worker_db, "SELECT id FROM customers WHERE last_proactive_outreach >"
                              " now() - interval '7 days'")
    assert recent, "seed should include recently contacted customers"
    assert not {r["id"] for r in recent} & {c["id"] for c in eligible}
    assert {"c-test-1", "c-test-3"} <= {c["id"] for c in eligible}
    with pytest.raises(store.InvalidInput, match="unknown tier"):
        store.list_customers("platinum")


def test_similar_cases_rank_the_matching_ticket_first(worker_db):
    cases = store.find_similar_cases("the bank opened a chargeback on my annual plan", limit=3)
    assert cases[0]["subject"] == "Chargeback dispute"
    assert cases[0]["similarity"] >= cases[-1]["similarity"]


def test_save_draft_writes_draft_message_and_audit_together(worker_db):
    before = len(store.audit_rows("draft_saved", "c-test-2"))
    draft = store.save_draft_reply("c-test-2", "Draft body", "t-c-test-2")
    thread = store.load_thread("c-test-2")
    assert thread["drafts"][-1]["id"] == draft["id"]
    assert thread["messages"][-1]["role"] == "draft"
    rows = store.audit_rows("draft_saved", "c-test-2")
    assert len(rows) == before + 1 and rows[-1]["payload"]["draft_id"] == draft["id"]


@pytest.mark.parametrize("call, error", [
    (lambda: store.save_draft_reply("c-nobody", "x"), store.CustomerNotFound),
    (lambda: store.save_draft_reply("c-test-1", "   "), store.InvalidInput),
    (lambda: store.save_draft_reply("c-test-1", "x", "t-c-test-2"), store.InvalidInput),
    (lambda: store.record_audit("Bad Action!", "c-test-1"), store.InvalidInput),
    (lambda: store.record_audit("ok_action", "c-nobody"), store.CustomerNotFound),
    (lambda: store.mark_outreach("robert'); drop table customers;--"), store.InvalidInput),
    (lambda: store.notify("slack", "hi", "c-nobody"), store.CustomerNotFound),
])
def test_bad_input_raises_clearly_and_writes_nothing(worker_db, call, error):
    tables = ("audit_log", "drafts", "messages", "outbox")
    before = {t: query(worker_db, f"SELECT count(*) AS n FROM {t}")[0]["n"] for t in tables}
    with pytest.raises(error):
        call()
    after = {t: query(worker_db, f"SELECT count(*) AS n FROM {t}")[0]["n"] for t in tables}
    assert before == after


def test_mark_outreach_and_notify_are_audited(worker_db):
    store.mark_outreach("c-test-5")
    assert store.audit_rows("outreach_marked", "c-test-5")
    assert "c-test-5" not in {c["id"] for c in store.list_customers("pro", 7)}
    row = store.notify("escalations-review", "please look", "c-test-5", {"k": 1})
    assert store.outbox("escalations-review")[-1]["id"] == row["id"]
    assert store.audit_rows("notification_sent", "c-test-5")[-1]["payload"]["outbox_id"] == row["id"]


def test_reset_restores_the_seed(worker_db):
    store.save_draft_reply("c-test-1", "temporary")
    counts = migrate.reset(worker_db)
    assert counts["drafts"] == 0 and counts["audit_log"] == 0 and counts["customers"] >= 45
