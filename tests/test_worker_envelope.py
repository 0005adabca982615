"""The email function end to end on the embedded engine: Decision 8's happy path, bad input,
Decision 6's burst limits, and Decision 8's failure-and-replay scenario."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from chat_agent import envelope_steps
from customer_data_mcp import store
from worker_helpers import query

# The Worker fixtures (worker_db, envelope, ...) with one Postgres for the whole session.
pytest_plugins = ["worker_helpers"]

EMAIL = "customer/email.received"
COURSE_EMAIL = "Hi, my refund hasn't arrived and I'm getting worried about my upcoming bill."
EMAIL_STEPS = ["load-customer", "load-thread", "run-agent", "save-draft-reply", "audit-handled"]


def _counts(url):
    return {t: query(url, f"SELECT count(*) AS n FROM {t}")[0]["n"]
            for t in ("audit_log", "drafts", "messages", "outbox")}


def test_happy_path_drafts_and_audits_once(envelope):
    internal_id = envelope.send(EMAIL, {"customer_id": "c-test-1", "body": COURSE_EMAIL},
                                "happy-1")
    run = envelope.wait_event_run(internal_id)
    assert run["status"] == "Completed", run
    assert run["output"]["status"] == "drafted"
    spans = envelope.trace(run["run_id"])
    assert [s["name"] for s in spans if s["name"] in EMAIL_STEPS] == EMAIL_STEPS
    assert all(s["status"] == "COMPLETED" for s in spans if s["name"] in EMAIL_STEPS)
    rows = store.audit_rows("email_drafted", "c-test-1")
    assert len(rows) == 1 and rows[0]["payload"]["run_id"] == run["run_id"]
    assert rows[0]["payload"]["draft_id"] == run["output"]["draft_id"]
    drafts = store.load_thread("c-test-1")["drafts"]
    assert drafts[-1]["id"] == run["output"]["draft_id"]
    assert drafts[-1]["body"].startswith("[offline lab model]")


@pytest.mark.parametrize("data, message", [
    ({"customer_id": "c-ghost", "body": "hello?"}, "No customer with id 'c-ghost'"),
    ({"customer_id": "c-test-2"}, "data.body"),
    ({"customer_id": "c-test-2", "body": "4111 1111 1111 1111 5555 5555 5555 4444 "
      "123-45-6789 078-05-1120"}, "Refused"),
])
def test_bad_input_fails_at_once_with_a_clear_error_and_writes_nothing(envelope, worker_db,
                                                                       data, message):
    before = _counts(worker_db)
    internal_id = envelope.send(EMAIL, data, f"bad-{message[:8]}")
    run = envelope.wait_event_run(internal_id)
    assert run["status"] == "Failed"
    assert message in str(run["output"])
    assert _counts(worker_db) == before


class _Peaks:
    """Counts step executions in flight, overall and per customer."""

    def __init__(self) -> None:
        self.now: Counter = Counter()
        self.total = self.peak_total = 0
        self.peak_per: Counter = Counter()
        self.calls = 0

    def wrap(self, fn, customer_of):
        async def wrapped(*args):
            cid = customer_of(args)
            self.total += 1
            self.now[cid] += 1
            self.calls += 1
            self.peak_total = max(self.peak_total, self.total)
            self.peak_per[cid] = max(self.peak_per[cid], self.now[cid])
            try:
                await asyncio.sleep(0.2)  # hold the slot so overlapping runs would show
                return await fn(*args)
            finally:
                self.total -= 1
                self.now[cid] -= 1
        return wrapped


def test_burst_of_20_respects_global_and_per_customer_limits(envelope, monkeypatch):
    peaks = _Peaks()
    for name, customer_of in [("load_customer", lambda a: a[0]), ("load_thread", lambda a: a[0]),
                              ("run_agent", lambda a: a[0]["id"]),
                              ("save_draft", lambda a: a[0]), ("audit", lambda a: a[1])]:
        monkeypatch.setattr(envelope_steps, name,
                            peaks.wrap(getattr(envelope_steps, name), customer_of))
    customers = [f"c-{1020 + i}" for i in range(5)]
    ids = [envelope.send(EMAIL, {"customer_id": cid, "body": f"Question {n} about my invoice"},
                         f"burst-{cid}-{n}")
           for n in range(4) for cid in customers]
    runs = [envelope.wait_event_run(i, timeout=300) for i in ids]
    assert [r["status"] for r in runs] == ["Completed"] * 20
    assert peaks.calls == 20 * 5
    assert peaks.peak_total <= 10, peaks.peak_total
    assert max(peaks.peak_per.values()) <= 2, dict(peaks.peak_per)
    for cid in customers:
        assert len(store.audit_rows("email_drafted", cid)) == 4


def test_failed_runs_replayed_after_the_fix_draft_exactly_once(envelope, worker_db,
                                                               monkeypatch):
    executed: Counter = Counter()
    real = {name: getattr(envelope_steps, name) for name in ("load_customer", "load_thread",
                                                             "run_agent")}

    def counting(name):
        async def wrapped(*args):
            executed[(name, args[0])] += 1
            return await real[name](*args)
        return wrapped

    async def broken_agent(*args):
        raise ValueError("simulated agent failure")

    monkeypatch.setattr(envelope_steps, "load_customer", counting("load_customer"))
    monkeypatch.setattr(envelope_steps, "load_thread", counting("load_thread"))
    monkeypatch.setattr(envelope_steps, "run_agent", broken_agent)
    customers = [f"c-{1030 + i}" for i in range(5)]
    ids = [envelope.send(EMAIL, {"customer_id": cid, "body": COURSE_EMAIL}, f"replay-{cid}")
           for cid in customers]
    failed = [envelope.wait_event_run(i, timeout=300) for i in ids]
    assert [r["status"] for r in failed] == ["Failed"] * 5
    assert "simulated agent failure" in str(failed[0]["output"])
    for run in failed:
        status = {s["name"]: s["status"] for s in envelope.trace(run["run_id"])}
        assert status["load-customer"] == status["load-thread"] == "COMPLETED"
        assert status["run-agent"] == "FAILED"
        assert "save-draft-reply" not in status and "audit-handled" not in status
    assert all(not store.audit_rows("email_drafted", cid) for cid in customers)

    monkeypatch.setattr(envelope_steps, "run_agent", real["run_agent"])  # the fix
    new_ids = [envelope.gql("mutation($id:ULID!){ rerun(runID:$id, "
                            "fromStep:{stepID:\"run-agent\"}) }", id=r["run_id"])["rerun"]
               for r in failed]
    replayed = [envelope.wait_run(i, timeout=300) for i in new_ids]
    assert [r["status"] for r in replayed] == ["Completed"] * 5
    for run in replayed:
        spans = {s["name"]: s for s in envelope.trace(run["run_id"])}
        for name in ("load-customer", "load-thread"):
            assert name not in spans or spans[name]["memoized"], spans[name]
        assert spans["run-agent"]["status"] == "COMPLETED" and not spans["run-agent"]["memoized"]
    for cid in customers:
        assert len(store.audit_rows("email_drafted", cid)) == 1
        assert executed[("load_customer", cid)] == 1
        assert executed[("load_thread", cid)] == 1
    rows = query(worker_db, "SELECT count(*) AS n FROM audit_log WHERE action = 'email_drafted'"
                            " AND customer_id = ANY(%s)", (customers,))
    assert rows[0]["n"] == 5


def test_fire_test_email_script_prints_event_and_run_ids(envelope):
    import subprocess
    import sys

    from customer_data_mcp.db import REPO_ROOT

    out = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "fire_test_email.py"), "--customer-id",
         "c-test-3", "--body", "Is my invoice correct?", "--engine-url", envelope.engine.url,
         "--wait", "60"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(": ", 1) for line in out.stdout.strip().splitlines())
    assert lines["event id"].startswith("test-email-c-test-3-")
    run = envelope.wait_run(lines["run id"])
    assert run["status"] == "Completed"


def test_postmark_webhook_starts_one_run_per_message_id(envelope):
    import httpx

    payload = {"From": "Test Customer Five <c-test-5@example.com>", "Subject": "Invoice",
               "TextBody": "Why is my invoice higher this month?",
               "Date": "Tue, 24 Nov 2026 09:15:00 +0000", "MessageID": "pm-0001"}
    url = envelope.host.url + "/webhooks/postmark"
    first = httpx.post(url, json=payload, timeout=30).json()
    again = httpx.post(url, json=payload, timeout=30).json()  # Postmark redelivers
    assert first["event_id"] == again["event_id"] == "postmark-pm-0001"
    run = envelope.wait_event_run(first["internal_ids"][0])
    assert run["status"] == "Completed"
    assert envelope.runs_of_event(again["internal_ids"][0]) == []  # deduped by event id
    rows = store.audit_rows("email_drafted", "c-test-5")
    assert len(rows) == 1 and rows[0]["payload"]["event_id"] == "postmark-pm-0001"
