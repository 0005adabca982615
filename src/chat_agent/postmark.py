"""Turn a Postmark inbound-email webhook payload into a ``customer/email.received`` event.

In production this transform lives in the Inngest dashboard's webhook source; the lab runs
the same mapping in its own webhook endpoint (``serve.py``):

    From (email) → data.customer_id (looked up)   TextBody → data.body
    Subject      → data.subject                   Date     → data.received_at (ISO 8601)
    MessageID    → event id (so a redelivered webhook never starts a second run)
"""

from __future__ import annotations

import email.utils
from typing import Callable

EVENT_NAME = "customer/email.received"


class PostmarkPayloadError(ValueError):
    """The webhook body is not a usable Postmark inbound payload; nothing was sent."""


def _sender_email(payload: dict) -> str:
    full = payload.get("FromFull")
    if isinstance(full, dict) and isinstance(full.get("Email"), str) and "@" in full["Email"]:
        return full["Email"].strip()
    raw = payload.get("From")
    if isinstance(raw, str):
        _name, address = email.utils.parseaddr(raw)
        if "@" in address:
            return address
    raise PostmarkPayloadError("Postmark payload has no usable 'From' email address")


def _iso_date(raw) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise PostmarkPayloadError("Postmark payload needs a 'Date' string")
    try:
        parsed = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError) as exc:
        raise PostmarkPayloadError(f"Postmark 'Date' is not an RFC 2822 date: {raw!r}") from exc
    if parsed is None:
        raise PostmarkPayloadError(f"Postmark 'Date' is not an RFC 2822 date: {raw!r}")
    return parsed.isoformat()


def _check_text(name: str, value) -> None:
    """Text an event and Postgres can carry: no NUL byte, no lone surrogate."""
    if not isinstance(value, str):
        return
    if "\x00" in value:
        raise PostmarkPayloadError(f"Postmark '{name}' contains a NUL byte")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise PostmarkPayloadError(f"Postmark '{name}' is not valid Unicode text") from exc


def postmark_to_event(payload, lookup_customer: Callable[[str], dict]) -> dict:
    """The event as a dict (``name``, ``id``, ``data``). ``lookup_customer(email)`` returns
    the customer record or raises (e.g. ``CustomerNotFound``)."""
    if not isinstance(payload, dict):
        raise PostmarkPayloadError("Postmark payload must be a JSON object")
    message_id = payload.get("MessageID")
    if not isinstance(message_id, str) or not message_id.strip():
        raise PostmarkPayloadError("Postmark payload needs a 'MessageID' (the idempotency key)")
    if len(message_id) > 200:
        raise PostmarkPayloadError("Postmark 'MessageID' is longer than 200 characters")
    body = payload.get("TextBody")
    if not isinstance(body, str) or not body.strip():
        raise PostmarkPayloadError("Postmark payload needs a non-empty 'TextBody'")
    subject = payload.get("Subject")
    if subject is not None and not isinstance(subject, str):
        raise PostmarkPayloadError("Postmark 'Subject' must be a string")
    for name, value in (("TextBody", body), ("Subject", subject), ("MessageID", message_id)):
        _check_text(name, value)
    received_at = _iso_date(payload.get("Date"))
    sender = _sender_email(payload)
    customer = lookup_customer(sender)
    return {"name": EVENT_NAME, "id": f"postmark-{message_id.strip()}",
            "data": {"customer_id": customer["id"], "body": body, "subject": subject or "",
                     "received_at": received_at, "from": sender,
                     "message_id": message_id.strip()}}
