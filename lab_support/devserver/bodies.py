"""Request bodies at the engine's edge: a size cap while reading, and a strict JSON parse.

``BodyLimit`` is an ASGI middleware: it reads each request body up to the cap of its route
(``limits.py``) and answers 413 with a JSON message past it, so no handler, GraphQL or MCP
included, ever holds more. A declared ``Content-Length`` over the cap is refused before a
byte is read.

``parse_json`` is the one JSON reader for what a client sends. Python's ``json`` accepts
things that later break the engine or the SDK, so they are refused here with a 400 message:
``NaN`` / ``Infinity`` and numbers that overflow to them, integers outside 64 bits (CEL's
int), strings with lone UTF-16 surrogates (they cannot be written out as UTF-8 again), and
nesting deeper than ``JSON_MAX_DEPTH``.
"""

from __future__ import annotations

import json
import math
from collections import deque

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .limits import (API_BODY_MAX_BYTES, EVENT_BODY_MAX_BYTES, GRAPHQL_BODY_MAX_BYTES, INT_MAX,
                     INT_MIN, JSON_MAX_DEPTH, MCP_BODY_MAX_BYTES, SYNC_BODY_MAX_BYTES)


class JSONInputError(ValueError):
    """The body is not JSON the engine accepts; the message says why (for a 400).
    ``syntax`` is True when it is not JSON at all (rather than JSON the engine refuses)."""

    def __init__(self, message: str, *, syntax: bool = False) -> None:
        super().__init__(message)
        self.syntax = syntax


def body_cap(path: str) -> int:
    if path.startswith("/e/"):
        return EVENT_BODY_MAX_BYTES
    if path == "/fn/register":
        return SYNC_BODY_MAX_BYTES
    if path.startswith("/v0/gql"):
        return GRAPHQL_BODY_MAX_BYTES
    if path == "/mcp" or path.startswith("/mcp/"):
        return MCP_BODY_MAX_BYTES
    return API_BODY_MAX_BYTES


class BodyLimit:
    """Buffer each HTTP request body up to its route's cap, then hand it on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = body_cap(scope["path"])
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > cap:
            await _too_large(scope, cap)(scope, receive, send)
            return
        body, trailing = bytearray(), None
        while True:
            message = await receive()
            if message["type"] != "http.request":
                trailing = message               # the client went away
                break
            body.extend(message.get("body", b""))
            if len(body) > cap:
                await _too_large(scope, cap)(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        queued: deque[Message] = deque([{"type": "http.request", "body": bytes(body),
                                         "more_body": False}])
        if trailing is not None:
            queued.append(trailing)

        async def replay() -> Message:
            return queued.popleft() if queued else await receive()

        await self.app(scope, replay, send)


def _too_large(scope: Scope, cap: int) -> JSONResponse:
    message = (f"request body is larger than {cap} bytes, the limit for "
               f"{scope['method']} {scope['path']}")
    body = {"error": message, "status": 413}
    if scope["path"].startswith("/e/"):
        body["ids"] = []
    return JSONResponse(body, status_code=413)


# -- strict JSON ---------------------------------------------------------------------------
def _refuse_constant(name: str):
    raise JSONInputError(f"{name} is not a JSON number (NaN and Infinity are not accepted)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JSONInputError(f"the number {text[:40]} is too large for a 64-bit float")
    return value


def _bounded_int(text: str) -> int:
    if len(text) > 20:
        raise JSONInputError(f"the integer {text[:40]}... does not fit in 64 bits")
    value = int(text)
    if not INT_MIN <= value <= INT_MAX:
        raise JSONInputError(f"the integer {text} does not fit in 64 bits")
    return value


def parse_json(raw: bytes | str, *, max_depth: int = JSON_MAX_DEPTH):
    """Parse ``raw`` as JSON the engine can store, show and send on, or raise JSONInputError."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    try:
        doc = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float,
                         parse_int=_bounded_int)
    except JSONInputError:
        raise
    except json.JSONDecodeError as exc:
        raise JSONInputError(f"invalid JSON: {exc.msg} at line {exc.lineno} "
                             f"column {exc.colno}", syntax=True) from None
    except RecursionError:
        raise JSONInputError(f"JSON nested deeper than {max_depth} levels") from None
    except ValueError as exc:
        raise JSONInputError(f"invalid JSON: {exc}") from None
    if text.count("{") + text.count("[") > max_depth or "\\u" in text:
        _check_tree(doc, max_depth, check_strings="\\u" in text)
    return doc


def _check_tree(doc, max_depth: int, check_strings: bool) -> None:
    """Depth and lone-surrogate check without recursion (a deep document cannot overflow it)."""
    stack = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            if depth > max_depth:
                raise JSONInputError(f"JSON nested deeper than {max_depth} levels")
            for key, value in node.items():
                if check_strings:
                    _check_string(key)
                stack.append((value, depth + 1))
        elif isinstance(node, list):
            if depth > max_depth:
                raise JSONInputError(f"JSON nested deeper than {max_depth} levels")
            stack.extend((value, depth + 1) for value in node)
        elif check_strings and isinstance(node, str):
            _check_string(node)


def _check_string(value: str) -> None:
    if value.isascii():
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise JSONInputError("a string contains a lone UTF-16 surrogate (U+D800-U+DFFF "
                             "without its pair); it is not valid Unicode") from None
