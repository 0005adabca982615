"""The lab's seed data: ~50 customers across tiers (including ``c-4429`` and ``c-test-1`` …
``c-test-5``), a thread each, refunds, and resolved tickets with embeddings.

Generated from a fixed random seed so every machine gets the same rows. Times are relative
to the Worker's clock (``clock.now()``: the wall clock, or the lab's engine clock) at seeding,
so "not contacted for 7 days" means the same thing whenever you seed.
"""

from __future__ import annotations

import datetime as dt
import random

from . import clock
from .embedding import embed_texts, to_pgvector

FIRST = ["Ayesha", "Bilal", "Chen", "Dana", "Elif", "Farhan", "Grace", "Hamza", "Ines", "Jonas",
         "Kiran", "Lena", "Marco", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tara"]
LAST = ["Khan", "Malik", "Wei", "Novak", "Demir", "Ahmed", "Okafor", "Raza", "Silva", "Berg"]

# (id, name, tier, days since last proactive outreach or None for never)
NAMED = [
    ("c-4429", "Ayesha Khan", "enterprise", 12),
    ("c-test-1", "Test Customer One", "pro", None),
    ("c-test-2", "Test Customer Two", "pro", 9),
    ("c-test-3", "Test Customer Three", "enterprise", 30),
    ("c-test-4", "Test Customer Four", "enterprise", None),
    ("c-test-5", "Test Customer Five", "pro", 8),
]

THREAD_TOPICS = [
    ("Refund not received", "Hi, my refund hasn't arrived yet and my card statement is due."),
    ("Invoice question", "Can you explain the extra line on this month's invoice?"),
    ("Login trouble", "I can't log in since the password reset; the link says expired."),
    ("Export to CSV", "Is there a way to export all my reports to CSV at once?"),
    ("Plan upgrade", "We'd like to move to the enterprise plan. What changes for us?"),
    ("API rate limits", "Our integration gets 429 errors every morning around 9am."),
]

RESOLVED_TICKETS = [
    ("Refund delayed by bank", "Refund issued but not visible on the card after 5 days.",
     "Confirmed the refund reference with the bank; card refunds take 5-10 business days."),
    ("Duplicate charge", "Customer was charged twice for the same monthly invoice.",
     "Voided the duplicate charge and issued a refund the same day."),
    ("Refund for unused seats", "Asked for a refund for seats removed mid-cycle.",
     "Prorated refund issued for the unused seats; explained proration."),
    ("Password reset link expired", "Reset link expired before the customer could use it.",
     "Sent a fresh reset link; links are valid for 30 minutes."),
    ("SSO login loop", "Enterprise SSO redirected back to the login page in a loop.",
     "Fixed the IdP callback URL in the SSO settings."),
    ("CSV export missing columns", "CSV export dropped the custom fields.",
     "Enabled 'include custom fields' in export settings."),
    ("429 rate limit errors", "Integration hit rate limits during the morning batch.",
     "Spread the batch over 15 minutes and raised the limit for the account."),
    ("Invoice shows wrong tax", "VAT was applied to a reverse-charge customer.",
     "Added the VAT ID and re-issued the invoice without VAT."),
    ("Chargeback dispute", "Customer's bank opened a chargeback for an annual plan.",
     "Escalated to billing lead; provided usage evidence; chargeback withdrawn."),
    ("Upgrade to enterprise", "Wanted to upgrade mid-cycle without losing data.",
     "Upgraded in place; prorated the difference on the next invoice."),
    ("Webhook deliveries failing", "Webhooks returned 500 from the customer's endpoint.",
     "Customer fixed their endpoint; replayed the failed deliveries."),
    ("Refund for annual plan", "Requested a refund two weeks after buying an annual plan.",
     "Full refund within the 30-day window; plan downgraded to free."),
    ("Data deletion request", "Asked to delete all personal data for a former employee.",
     "Deleted the user and confirmed in writing within 7 days."),
    ("Legal notice about contract", "Customer's counsel asked about contract termination terms.",
     "Escalated to legal; sent the signed contract and termination clause."),
    ("Slow dashboard", "Dashboard took 20 seconds to load for large accounts.",
     "Enabled report caching; load time back under 2 seconds."),
    ("Missing invoice PDF", "Invoice PDF link returned 404.",
     "Regenerated the PDF and fixed the storage link."),
    ("Seat limit reached", "Could not invite new users; seat limit reached.",
     "Added seats and explained the seat management page."),
    ("Two-factor lockout", "Lost the phone with the 2FA app.",
     "Verified identity via the account owner and reset 2FA."),
    ("Currency change", "Wanted invoices in EUR instead of USD.",
     "Switched billing currency at renewal."),
    ("Refund over limit", "Requested a 1,200 USD refund after an outage.",
     "Escalated to billing lead; partial service credit agreed."),
]


def _customers() -> list[tuple[str, str, str, str, int | None]]:
    rng = random.Random(4429)
    rows = [(cid, name, f"{cid}@example.com", tier, days) for cid, name, tier, days in NAMED]
    tiers = ["free", "free", "pro", "pro", "enterprise"]
    for n in range(44):
        cid = f"c-{1001 + n}"
        name = f"{FIRST[n % len(FIRST)]} {LAST[(n * 7) % len(LAST)]}"
        tier = tiers[n % len(tiers)]
        # Some were contacted recently (not eligible for outreach), some long ago, some never.
        days = rng.choice([None, 2, 3, 10, 15, 45])
        rows.append((cid, name, f"{name.lower().replace(' ', '.')}.{cid}@example.com", tier,
                     days))
    return rows


def _ago(now: dt.datetime, days: float) -> dt.datetime:
    return now - dt.timedelta(days=days)


def load_seed(conn, now: dt.datetime | None = None) -> None:
    """Insert the seed rows on ``conn`` (inside the caller's transaction), dated relative to
    ``now`` (default: the Worker's clock)."""
    now = now or clock.now()
    rng = random.Random(5)
    customers = _customers()
    for cid, name, email, tier, days in customers:
        conn.execute(
            "INSERT INTO customers (id, email, name, tier, created_at, last_proactive_outreach)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
            (cid, email, name, tier, _ago(now, 400), None if days is None else _ago(now, days)))
    for i, (cid, *_rest) in enumerate(customers):
        subject, body = THREAD_TOPICS[i % len(THREAD_TOPICS)]
        thread_id = f"t-{cid}"
        inserted = conn.execute(
            "INSERT INTO threads (id, customer_id, subject, created_at, updated_at)"
            " VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (id) DO NOTHING RETURNING id",
            (thread_id, cid, subject, _ago(now, 3), _ago(now, 3))).fetchone()
        if inserted:
            conn.execute("INSERT INTO messages (thread_id, role, body, created_at) VALUES"
                         " (%s, 'customer', %s, %s), (%s, 'agent', %s, %s)",
                         (thread_id, body, _ago(now, 3), thread_id,
                          f"Thanks for reaching out about '{subject.lower()}'. We're on it.",
                          _ago(now, 2)))
    _seed_refunds(conn, customers, rng, now)
    _seed_tickets(conn, customers, now)


def _seed_refunds(conn, customers, rng, now: dt.datetime) -> None:
    if conn.execute("SELECT 1 FROM refunds LIMIT 1").fetchone():
        return
    for cid, *_rest in customers[::3]:
        conn.execute("INSERT INTO refunds (customer_id, amount_cents, status, reason, created_at)"
                     " VALUES (%s, %s, %s, %s, %s)",
                     (cid, rng.choice([1500, 4900, 12000, 29900]),
                      rng.choice(["issued", "requested"]), "billing adjustment",
                      _ago(now, rng.randint(1, 40))))


def _seed_tickets(conn, customers, now: dt.datetime) -> None:
    texts = [f"{subject}. {summary} {resolution}" for subject, summary, resolution
             in RESOLVED_TICKETS]
    model, vectors = embed_texts(texts)
    for i, ((subject, summary, resolution), vector) in enumerate(zip(RESOLVED_TICKETS, vectors)):
        ticket_id = f"tk-{1000 + i}"
        cid = customers[(i * 5) % len(customers)][0]
        inserted = conn.execute(
            "INSERT INTO tickets (id, customer_id, subject, summary, resolution, status,"
            " created_at, resolved_at) VALUES (%s, %s, %s, %s, %s, 'resolved',"
            " %s, %s) ON CONFLICT (id) DO NOTHING RETURNING id",
            (ticket_id, cid, subject, summary, resolution, _ago(now, 60 + i),
             _ago(now, 58 + i))).fetchone()
        if inserted:
            conn.execute("INSERT INTO ticket_embeddings (ticket_id, model, embedding)"
                         " VALUES (%s, %s, %s::vector)", (ticket_id, model, to_pgvector(vector)))
