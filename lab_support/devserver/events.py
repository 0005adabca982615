"""The event API's input rules (``POST /e/{key}``), as the dev server applies them.

The whole request is validated before anything is stored: one bad event rejects the
request with a 400 and a message, and nothing from it is kept. (The real server accepts
the events before the bad one; the issue asks for all-or-nothing, which loses nothing
silently either way. Documented in docs/engine-contract.md.) The JSON itself is read by
``bodies.parse_json``, which refuses what Python would accept and the engine could not
store or show again (NaN, lone surrogates, 64-bit overflow, deep nesting).
"""

from __future__ import annotations

import json

from .bodies import JSONInputError, parse_json
from .limits import MAX_EVENT_BYTES, MAX_EVENTS_PER_REQUEST

MAX_EVENTS = MAX_EVENTS_PER_REQUEST
MIN_TS = 315_532_800_000        # 1980-01-01
MAX_TS = 4_102_444_800_000      # 2100-01-01


class EventInputError(ValueError):
    pass


def parse_events(body: bytes) -> list[dict]:
    if not body.strip():
        return []
    try:
        doc = parse_json(body)
    except JSONInputError as exc:
        raise EventInputError(str(exc)) from None
    if isinstance(doc, dict):
        events = [doc]
    elif isinstance(doc, list):
        events = doc
    else:
        raise EventInputError("Request body must contain an event object or an array of "
                              "event objects")
    if len(events) > MAX_EVENTS:
        raise EventInputError(f"Cannot have more than {MAX_EVENTS} events in a batch")
    for n, event in enumerate(events):
        validate_event(event, n)
    return events


def validate_event(event, n: int = 0) -> None:
    where = f" (event {n})" if n else ""
    if not isinstance(event, dict):
        raise EventInputError(f"each event must be a JSON object{where}")
    name = event.get("name")
    if not isinstance(name, str) or not name.strip():
        raise EventInputError(f"event name is empty{where}")
    if name.lower().startswith("inngest/"):
        raise EventInputError(f"event name is reserved for internal use: {name}")
    data = event.get("data")
    if data is not None and not isinstance(data, dict):
        raise EventInputError(f"event data must be an object or null, not "
                              f"{type(data).__name__}{where}")
    if event.get("id") is not None and not isinstance(event["id"], str):
        raise EventInputError(f"event id must be a string{where}")
    if event.get("v") is not None and not isinstance(event["v"], str):
        raise EventInputError(f"event v must be a string{where}")
    ts = event.get("ts")
    if ts not in (None, 0):
        # An integer, as the SDK's own model insists (5.0 fails there): never a float.
        if isinstance(ts, bool) or not isinstance(ts, int):
            raise EventInputError(f"event ts must be an integer of milliseconds{where}")
        if ts < MIN_TS:
            raise EventInputError("timestamp is before Jan 1, 1980")
        if ts > MAX_TS:
            raise EventInputError("timestamp is after Jan 1, 2100")
    user = event.get("user")
    if user is not None and not isinstance(user, dict):
        raise EventInputError(f"event user must be an object{where}")
    size = len(json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode())
    if size > MAX_EVENT_BYTES:
        raise EventInputError(f"Event is over the max size: Max {MAX_EVENT_BYTES} bytes / "
                              f"Size {size} bytes")
