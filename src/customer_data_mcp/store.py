"""The system-of-record API: what the MCP tools, the notebooks and the tests call.

Every function takes an optional ``url`` (default: ``db.database_url()``) and returns plain
JSON-ready dicts (timestamps as ISO strings). Every write and its ``audit_log`` row commit in
one transaction, so there is never a draft without its audit row or the other way round.
Bad input raises ``InvalidInput``; an unknown customer raises ``CustomerNotFound``; in both
cases nothing is written. "Bad" includes what Postgres itself would refuse with a raw driver
error: NUL bytes and lone surrogates in text, NaN or infinity in a payload, booleans where an
id or a number belongs, payloads nested deeper than ``MAX_PAYLOAD_DEPTH``.

Time comes from ``clock.now()`` (the wall clock, or the clock ``WORKER_CLOCK_URL`` names) and
is passed into every statement that stores or compares a time, never Postgres ``now()``: so
"not contacted for 7 days" follows whatever clock runs the Worker.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from decimal import Decimal

from psycopg.types.json import Jsonb

from . import clock, db
from .embedding import embed_text, to_pgvector

CUSTOMER_ID = re.compile(r"^c-[A-Za-z0-9][A-Za-z0-9-]{0,62}$")
THREAD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
ACTION = re.compile(r"^[a-z][a-z0-9_.:-]{0,63}$")
TIERS = ("free", "pro", "enterprise")
DRAFT_KINDS = ("reply", "outreach", "escalation")
MAX_TEXT = 20_000
MAX_PAYLOAD_DEPTH = 32


class InvalidInput(ValueError):
    """The caller passed something the store cannot accept; nothing was written."""


class CustomerNotFound(LookupError):
    """No customer with that id or email; nothing was written."""


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def _check_customer_id(customer_id) -> str:
    if not isinstance(customer_id, str) or not CUSTOMER_ID.match(customer_id):
        raise InvalidInput(f"customer_id must look like 'c-4429', got {customer_id!r}")
    return customer_id


def _storable(name: str, value: str) -> str:
    """Text Postgres can store: no NUL byte, encodable as UTF-8."""
    if "\x00" in value:
        raise InvalidInput(f"{name} contains a NUL byte (\\x00), which Postgres text cannot store")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"{name} is not valid Unicode text (a lone surrogate at "
                           f"position {exc.start})") from exc
    return value


def _check_text(name: str, value, *, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{name} must be a non-empty string")
    if len(value) > MAX_TEXT:
        raise InvalidInput(f"{name} is longer than {MAX_TEXT} characters")
    return _storable(name, value)


def _check_int(name: str, value, low: int, high: int) -> int:
    # bool is an int subclass: True would otherwise pass as 1.
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"{name} must be a whole number between {low} and {high}, "
                           f"got {value!r}")
    return value


def _check_thread_id(thread_id) -> str | None:
    if thread_id is not None and (not isinstance(thread_id, str)
                                  or not THREAD_ID.match(thread_id)):
        raise InvalidInput(f"thread_id must look like 't-c-4429', got {thread_id!r}")
    return thread_id


def _check_payload_values(payload: dict) -> None:
    """Walk the payload without recursion: depth, key types, text and numbers jsonb accepts."""
    stack = [(payload, 1, "payload")]
    while stack:
        value, depth, where = stack.pop()
        if depth > MAX_PAYLOAD_DEPTH:
            raise InvalidInput(f"payload is nested deeper than {MAX_PAYLOAD_DEPTH} levels")
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise InvalidInput(f"{where} has a non-string key {key!r}")
                _storable(f"{where} key {key[:40]!r}", key)
                stack.append((item, depth + 1, f"{where}.{key[:40]}"))
        elif isinstance(value, (list, tuple)):
            stack.extend((item, depth + 1, f"{where}[{i}]") for i, item in enumerate(value))
        elif isinstance(value, str):
            _storable(where, value)
        elif isinstance(value, float) and not math.isfinite(value):
            raise InvalidInput(f"{where} is {value!r}; JSON (and jsonb) has no NaN or infinity")


def _payload(payload) -> dict:
    if payload is None:
        return {}
    if not isinstance(payload, dict):
        raise InvalidInput("payload must be a JSON object (a dict)")
    _check_payload_values(payload)
    try:
        return json.loads(json.dumps(_jsonable(payload), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"payload is not JSON-serialisable: {exc}") from exc


def _check_tiers(tier) -> list[str]:
    if tier is None:
        return []
    if isinstance(tier, str):
        tiers = [tier]
    elif isinstance(tier, (list, tuple)) and all(isinstance(t, str) for t in tier):
        tiers = list(tier)
    else:
        raise InvalidInput(f"tier must be a tier name or a list of them, got {tier!r}")
    bad = [t for t in tiers if t not in TIERS]
    if bad:
        raise InvalidInput(f"unknown tier(s) {bad}; use {list(TIERS)}")
    return tiers


def _require_customer(conn, customer_id: str) -> dict:
    row = conn.execute("SELECT id, email, name, tier, created_at, last_proactive_outreach"
                       " FROM customers WHERE id = %s", (customer_id,)).fetchone()
    if row is None:
        raise CustomerNotFound(f"No customer with id {customer_id!r}")
    return row


def _audit(conn, action: str, customer_id: str | None, payload: dict, at: dt.datetime) -> dict:
    return conn.execute("INSERT INTO audit_log (action, customer_id, payload, created_at)"
                        " VALUES (%s, %s, %s, %s)"
                        " RETURNING id, action, customer_id, payload, created_at",
                        (action, customer_id, Jsonb(payload), at)).fetchone()


# ---------------------------------------------------------------- reads

def load_customer(customer_id: str, *, url: str | None = None) -> dict:
    """The customer record plus counts of open tickets and refunds."""
    _check_customer_id(customer_id)
    with db.connect(url) as conn:
        row = _require_customer(conn, customer_id)
        extra = conn.execute(
            "SELECT (SELECT count(*) FROM tickets WHERE customer_id = %(c)s"
            "        AND status <> 'resolved') AS open_tickets,"
            " (SELECT count(*) FROM refunds WHERE customer_id = %(c)s) AS refunds",
            {"c": customer_id}).fetchone()
    return _jsonable({**row, **extra})


def find_customer_by_email(email: str, *, url: str | None = None) -> dict:
    """The customer whose email matches (case-insensitive)."""
    if not isinstance(email, str) or "@" not in email or len(email) > 320:
        raise InvalidInput(f"not an email address: {email!r}")
    _storable("email", email)
    with db.connect(url) as conn:
        row = conn.execute("SELECT id, email, name, tier FROM customers"
                           " WHERE lower(email) = lower(%s)", (email.strip(),)).fetchone()
    if row is None:
        raise CustomerNotFound(f"No customer with email {email!r}")
    return _jsonable(row)


def load_thread(customer_id: str, thread_id: str | None = None, *,
                url: str | None = None) -> dict:
    """The customer's given (or most recent) thread with its messages and drafts."""
    _check_customer_id(customer_id)
    _check_thread_id(thread_id)
    with db.connect(url) as conn:
        _require_customer(conn, customer_id)
        if thread_id is None:
            thread = conn.execute("SELECT * FROM threads WHERE customer_id = %s"
                                  " ORDER BY updated_at DESC, id LIMIT 1",
                                  (customer_id,)).fetchone()
        else:
            thread = conn.execute("SELECT * FROM threads WHERE id = %s AND customer_id = %s",
                                  (thread_id, customer_id)).fetchone()
            if thread is None:
                raise InvalidInput(f"customer {customer_id} has no thread {thread_id!r}")
        if thread is None:
            return {"customer_id": customer_id, "thread": None, "messages": [], "drafts": []}
        messages = conn.execute("SELECT id, role, body, created_at FROM messages"
                                " WHERE thread_id = %s ORDER BY id", (thread["id"],)).fetchall()
        drafts = conn.execute("SELECT id, kind, body, created_at FROM drafts"
                              " WHERE thread_id = %s ORDER BY id", (thread["id"],)).fetchall()
    return _jsonable({"customer_id": customer_id, "thread": thread, "messages": messages,
                      "drafts": drafts})


def list_customers(tier: str | list[str] | None = None,
                   outreach_older_than_days: int | None = None, limit: int = 1000, *,
                   url: str | None = None) -> list[dict]:
    """Customers filtered by tier(s) and by "not contacted proactively for N days"
    (never-contacted customers count as eligible)."""
    tiers = _check_tiers(tier)
    if outreach_older_than_days is not None:
        _check_int("outreach_older_than_days", outreach_older_than_days, 0, 36_500)
    _check_int("limit", limit, 1, 10_000)
    sql = "SELECT id, email, name, tier, last_proactive_outreach FROM customers WHERE true"
    params: list = []
    if tiers:
        sql += " AND tier = ANY(%s)"
        params.append(tiers)
    if outreach_older_than_days is not None:
        sql += (" AND (last_proactive_outreach IS NULL OR"
                " last_proactive_outreach < %s - make_interval(days => %s))")
        params += [clock.now(), outreach_older_than_days]
    sql += " ORDER BY id LIMIT %s"
    params.append(limit)
    with db.connect(url) as conn:
        return _jsonable(conn.execute(sql, params).fetchall())


def recent_activity(customer_id: str, days: int = 30, *, url: str | None = None) -> dict:
    """Conversations, refunds and escalations of the last ``days`` days."""
    _check_customer_id(customer_id)
    _check_int("days", days, 1, 3650)
    since = {"c": customer_id, "d": days, "now": clock.now()}
    with db.connect(url) as conn:
        _require_customer(conn, customer_id)
        conversations = conn.execute(
            "SELECT t.id, t.subject, t.status, t.updated_at, count(m.id) AS messages"
            " FROM threads t LEFT JOIN messages m ON m.thread_id = t.id"
            " WHERE t.customer_id = %(c)s AND t.updated_at > %(now)s - make_interval(days => %(d)s)"
            " GROUP BY t.id ORDER BY t.updated_at DESC", since).fetchall()
        refunds = conn.execute(
            "SELECT id, amount_cents, status, reason, created_at FROM refunds"
            " WHERE customer_id = %(c)s AND created_at > %(now)s - make_interval(days => %(d)s)"
            " ORDER BY created_at DESC", since).fetchall()
        escalations = conn.execute(
            "SELECT id, action, payload, created_at FROM audit_log WHERE customer_id = %(c)s"
            " AND action LIKE 'escalation%%'"
            " AND created_at > %(now)s - make_interval(days => %(d)s) ORDER BY id",
            since).fetchall()
    return _jsonable({"customer_id": customer_id, "days": days, "conversations": conversations,
                      "refunds": refunds, "escalations": escalations})


def find_similar_cases(query: str, limit: int = 3, *, url: str | None = None) -> list[dict]:
    """Resolved tickets nearest to ``query`` by cosine similarity of their embeddings."""
    _check_text("query", query)
    _check_int("limit", limit, 1, 20)
    _model, vector = embed_text(query)
    with db.connect(url) as conn:
        rows = conn.execute(
            "SELECT t.id AS ticket_id, t.subject, t.summary, t.resolution,"
            " 1 - (e.embedding <=> %s::vector) AS similarity"
            " FROM ticket_embeddings e JOIN tickets t ON t.id = e.ticket_id"
            " WHERE t.status = 'resolved' ORDER BY e.embedding <=> %s::vector, t.id LIMIT %s",
            (to_pgvector(vector), to_pgvector(vector), limit)).fetchall()
    return [{**r, "similarity": round(float(r["similarity"]), 4)} for r in _jsonable(rows)]


def audit_rows(action: str | None = None, customer_id: str | None = None, *,
               url: str | None = None) -> list[dict]:
    """``audit_log`` rows, oldest first, optionally filtered."""
    if action is not None and (not isinstance(action, str) or not ACTION.match(action)):
        raise InvalidInput(f"action must be a short snake_case name, got {action!r}")
    if customer_id is not None:
        _check_customer_id(customer_id)
    sql, params = "SELECT * FROM audit_log WHERE true", []
    if action:
        sql += " AND action = %s"
        params.append(action)
    if customer_id:
        sql += " AND customer_id = %s"
        params.append(customer_id)
    with db.connect(url) as conn:
        return _jsonable(conn.execute(sql + " ORDER BY id", params).fetchall())


def outbox(channel: str | None = None, *, url: str | None = None) -> list[dict]:
    """The local stand-in for Slack: notifications, oldest first."""
    if channel is not None:
        _check_text("channel", channel)
    sql, params = "SELECT * FROM outbox", []
    if channel:
        sql += " WHERE channel = %s"
        params.append(channel)
    with db.connect(url) as conn:
        return _jsonable(conn.execute(sql + " ORDER BY id", params).fetchall())


# ---------------------------------------------------------------- writes (each with its audit row)

def save_draft_reply(customer_id: str, body: str, thread_id: str | None = None,
                     kind: str = "reply", meta: dict | None = None, *,
                     url: str | None = None) -> dict:
    """Persist a draft (and, for a thread, a ``draft`` message in it) plus a ``draft_saved``
    audit row, in one transaction."""
    _check_customer_id(customer_id)
    _check_text("body", body)
    _check_thread_id(thread_id)
    if not isinstance(kind, str) or kind not in DRAFT_KINDS:
        raise InvalidInput(f"kind must be one of {list(DRAFT_KINDS)}, got {kind!r}")
    meta = _payload(meta)
    at = clock.now()
    with db.connect(url) as conn:
        _require_customer(conn, customer_id)
        if thread_id is not None:
            owner = conn.execute("SELECT customer_id FROM threads WHERE id = %s",
                                 (thread_id,)).fetchone()
            if owner is None or owner["customer_id"] != customer_id:
                raise InvalidInput(f"customer {customer_id} has no thread {thread_id!r}")
            conn.execute("INSERT INTO messages (thread_id, role, body, created_at)"
                         " VALUES (%s, 'draft', %s, %s)", (thread_id, body, at))
            conn.execute("UPDATE threads SET updated_at = %s WHERE id = %s", (at, thread_id))
        draft = conn.execute("INSERT INTO drafts (customer_id, thread_id, kind, body, created_at)"
                             " VALUES (%s, %s, %s, %s, %s) RETURNING *",
                             (customer_id, thread_id, kind, body, at)).fetchone()
        _audit(conn, "draft_saved", customer_id,
               {"draft_id": draft["id"], "kind": kind, "thread_id": thread_id, **meta}, at)
    return _jsonable(draft)


def record_audit(action: str, customer_id: str | None = None, payload: dict | None = None, *,
                 url: str | None = None) -> dict:
    """Write one ``audit_log`` row. ``customer_id`` may be None for system-wide actions, but
    when given it must be a known customer."""
    if not isinstance(action, str) or not ACTION.match(action):
        raise InvalidInput(f"action must be a short snake_case name, got {action!r}")
    if customer_id is not None:
        _check_customer_id(customer_id)
    payload = _payload(payload)
    at = clock.now()
    with db.connect(url) as conn:
        if customer_id is not None:
            _require_customer(conn, customer_id)
        return _jsonable(_audit(conn, action, customer_id, payload, at))


def mark_outreach(customer_id: str, *, url: str | None = None) -> dict:
    """Stamp ``last_proactive_outreach`` with the Worker's now, plus an ``outreach_marked``
    audit row."""
    _check_customer_id(customer_id)
    at = clock.now()
    with db.connect(url) as conn:
        _require_customer(conn, customer_id)
        row = conn.execute("UPDATE customers SET last_proactive_outreach = %s WHERE id = %s"
                           " RETURNING id, last_proactive_outreach", (at, customer_id)).fetchone()
        _audit(conn, "outreach_marked", customer_id,
               {"at": row["last_proactive_outreach"].isoformat()}, at)
    return _jsonable(row)


def notify(channel: str, message: str, customer_id: str | None = None,
           payload: dict | None = None, *, url: str | None = None) -> dict:
    """Post to the local outbox (the lab's Slack) with a ``notification_sent`` audit row."""
    _check_text("channel", channel)
    _check_text("message", message)
    if customer_id is not None:
        _check_customer_id(customer_id)
    payload = _payload(payload)
    at = clock.now()
    with db.connect(url) as conn:
        if customer_id is not None:
            _require_customer(conn, customer_id)
        row = conn.execute("INSERT INTO outbox (channel, customer_id, message, payload, created_at)"
                           " VALUES (%s, %s, %s, %s, %s) RETURNING *",
                           (channel, customer_id, message, Jsonb(payload), at)).fetchone()
        _audit(conn, "notification_sent", customer_id,
               {"outbox_id": row["id"], "channel": channel}, at)
    return _jsonable(row)
