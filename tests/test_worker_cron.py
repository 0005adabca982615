"""Decision 5: the 09:00 UTC cron fans out one idempotent event per eligible customer and each
child run drafts, marks and audits an outreach."""

from __future__ import annotations

import datetime as dt

from customer_data_mcp import store
from worker_helpers import engine_json, wait_until

# The Worker fixtures (worker_db, envelope, ...) with one Postgres for the whole session.
pytest_plugins = ["worker_helpers"]

CRON = "chat-agent-daily-customer-health-check"
CHILD = "chat-agent-process-customer-health-check"


def _next_nine(now_iso: str) -> str:
    now = dt.datetime.fromisoformat(now_iso.replace("Z", "+00:00"))
    nine = now.replace(hour=9, minute=0, second=0, microsecond=0)
    if nine <= now:
        nine += dt.timedelta(days=1)
    return (nine + dt.timedelta(seconds=1)).isoformat().replace("+00:00", "Z")


def test_cron_fans_out_and_every_child_drafts_outreach(envelope):
    eligible = {c["id"] for c in store.list_customers(["pro", "enterprise"], 7)}
    assert len(eligible) >= 5
    clock = engine_json(envelope.engine.url, "GET", "/lab/v1/clock")
    engine_json(envelope.engine.url, "POST", "/lab/v1/clock/advance",
                json={"to": _next_nine(clock["now"])})
    parent = wait_until(lambda: [r for r in envelope.lab_runs(CRON)
                                 if r["status"] in ("Completed", "Failed")],
                        timeout=120, message="the 09:00 cron run to finish")[0]
    assert parent["status"] == "Completed", parent
    assert parent["output"]["customers_scheduled"] == len(eligible)
    day = parent["output"]["date"]

    children = wait_until(
        lambda: (runs := [r for r in envelope.lab_runs(CHILD) if r["status"] == "Completed"])
        and len(runs) >= len(eligible) and runs,
        timeout=300, message=f"{len(eligible)} health-check runs to complete")
    assert len(children) == len(eligible)
    assert not [r for r in envelope.lab_runs(CHILD) if r["status"] == "Failed"]
    for cid in eligible:
        rows = store.audit_rows("outreach_drafted", cid)
        assert len(rows) == 1 and rows[0]["payload"]["date"] == day
        assert store.audit_rows("outreach_marked", cid)
    assert not store.list_customers(["pro", "enterprise"], 7)  # everyone was contacted

    # The same fan-out event again (a second cron firing that day) starts no new run.
    cid = sorted(eligible)[0]
    envelope.send("customer/health_check.requested", {"customer_id": cid, "date": day},
                  f"health-check-{cid}-{day}")
    envelope.send("customer/health_check.requested", {"customer_id": "c-test-1", "date": day},
                  "a-marker-event")  # a fresh id does run: wait for it to know we're settled
    wait_until(lambda: len(envelope.lab_runs(CHILD)) >= len(eligible) + 1, timeout=60,
               message="the marker run to start")
    wait_until(lambda: all(r["status"] == "Completed" for r in envelope.lab_runs(CHILD)),
               timeout=120, message="the marker run to finish")
    assert len(envelope.lab_runs(CHILD)) == len(eligible) + 1
    assert len(store.audit_rows("outreach_drafted", cid)) == 1
