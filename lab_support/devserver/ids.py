"""Identifiers and time formats shared by the engine: ULIDs, step-id hashes, RFC 3339."""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import datetime, timezone

from ulid import ULID

DEV_ACCOUNT_ID = "00000000-0000-4000-a000-000000000000"
DEV_ENV_ID = "00000000-0000-4000-b000-000000000000"


def new_ulid(ms: int | None = None) -> str:
    """A ULID whose time part is ``ms`` (engine clock), random otherwise."""
    if ms is None:
        return str(ULID())
    return str(ULID.from_timestamp(ms / 1000.0))


def ulid_from_seed(seed_header: str | None, n: int) -> str | None:
    """The internal id the real server derives from ``x-inngest-event-id-seed`` (n is 1-based).

    Same seed, same ids: that is how a retried SDK send() is deduplicated.
    A malformed header gives None (the caller then uses a random id), as on the real server.
    """
    if not seed_header:
        return None
    parts = seed_header.split(",")
    if len(parts) != 2:
        return None
    try:
        ms = int(parts[0])
        entropy = bytearray(base64.b64decode(parts[1], validate=True))
    except (ValueError, TypeError):
        return None
    if ms <= 0 or len(entropy) != 10:
        return None
    tail = (int.from_bytes(entropy[6:], "big") + n) & 0xFFFFFFFF
    entropy[6:] = tail.to_bytes(4, "big")
    return str(ULID.from_bytes(ms.to_bytes(6, "big") + bytes(entropy)))


def ulid_ms(value: str) -> int:
    return int(ULID.from_str(value).milliseconds)


def is_ulid(value: str) -> bool:
    try:
        ULID.from_str(value)
        return True
    except (ValueError, TypeError):
        return False


def step_hash(user_id: str) -> str:
    """Hashed step id: lower-case hex SHA-1 of the user step id (the SDK does the same)."""
    return hashlib.sha1(user_id.encode()).hexdigest()


def rfc3339(ms: int | None) -> str | None:
    if ms is None:
        return None
    dt = datetime.fromtimestamp(ms / 1000.0, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_time_ms(text: str) -> int:
    """RFC 3339 / ISO 8601 text to epoch ms (raises ValueError)."""
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


def new_uuid() -> str:
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def stable_uuid(*parts: str) -> str:
    """Deterministic UUID (SHA-1 based) for apps and functions, stable across restarts."""
    h = bytearray(hashlib.sha1("\x00".join(parts).encode()).digest()[:16])
    h[6] = (h[6] & 0x0F) | 0x50
    h[8] = (h[8] & 0x3F) | 0x80
    x = h.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"
