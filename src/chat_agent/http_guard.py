"""What the Worker host refuses before doing any work on a request to a state-changing route.

* **Host** must name a trusted host (default: loopback, any port). A DNS-rebinding page on
  ``evil.example`` that resolves to 127.0.0.1 still sends ``Host: evil.example``: 421.
* **Origin**, when a browser sends one, must be a loopback origin (``http://127.0.0.1:*``,
  ``http://localhost:*``, ``http://[::1]:*``). A page on another origin (or an opaque
  ``null`` origin) gets 403, so it cannot approve an escalation or inject an email. Requests
  without an Origin (curl, Postmark's servers, the SDK, tests) pass: browsers always send
  Origin on cross-origin POSTs.
* **Body**: at most ``MAX_BODY_BYTES`` (413, read in chunks so a huge body is never held in
  memory), JSON, nested at most ``MAX_JSON_DEPTH`` deep (400).

The policy is the one the MCP mount of the lab's engine applies (the MCP SDK's DNS-rebinding
protection). The Worker keeps its own copy because it must not import the lab.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import urlsplit

MAX_BODY_BYTES = 1_048_576
MAX_JSON_DEPTH = 32
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class Refused(Exception):
    """The request is refused; ``status`` and the message say why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _hostname(authority: str) -> str:
    """``127.0.0.1:8000`` → ``127.0.0.1``; ``[::1]:8000`` → ``::1``."""
    try:
        return (urlsplit(f"//{authority}").hostname or "").lower()
    except ValueError:  # a malformed port or bracket
        return ""


def check_headers(headers, trusted_hosts: Iterable[str] = LOOPBACK_HOSTS) -> None:
    """Raise ``Refused`` for an untrusted Host or a foreign Origin."""
    trusted = {h.lower().strip("[]") for h in trusted_hosts}
    host = headers.get("host") or ""
    if _hostname(host) not in trusted:
        raise Refused(421, f"Host {host!r} is not one this Worker serves "
                           f"({', '.join(sorted(trusted))}); refused to guard against DNS "
                           "rebinding.")
    origin = headers.get("origin")
    if origin is None:
        return
    parts = urlsplit(origin) if origin != "null" else None
    if parts is None or parts.scheme not in ("http", "https") \
            or (parts.hostname or "").lower() not in trusted:
        raise Refused(403, f"Origin {origin!r} may not call this Worker: a web page on another "
                           "site cannot send emails or reviewer decisions here.")


async def read_body(request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, or ``Refused(413)`` as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Refused(413, f"body is {int(declared)} bytes; this endpoint takes at most {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refused(413, f"body is over {limit} bytes; this endpoint takes at most {limit}")
        chunks.append(chunk)
    return b"".join(chunks)


def _depth(value, limit: int) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if depth > limit:
                return depth
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _no_constants(name: str):
    raise ValueError(f"{name} is not JSON (standard JSON has no NaN or Infinity)")


def parse_json(raw: bytes, max_depth: int = MAX_JSON_DEPTH):
    """Decode a JSON body; ``Refused(400)`` for invalid or too deeply nested JSON."""
    try:
        value = json.loads(raw, parse_constant=_no_constants)
    except RecursionError as exc:
        raise Refused(400, f"body is JSON nested deeper than {max_depth} levels") from exc
    except ValueError as exc:
        raise Refused(400, f"body is not JSON: {exc}") from exc
    if _depth(value, max_depth) > max_depth:
        raise Refused(400, f"body is JSON nested deeper than {max_depth} levels")
    return value
