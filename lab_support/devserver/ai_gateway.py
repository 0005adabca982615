"""The model call the engine makes itself for ``step.ai.infer`` (the SDK's AIGateway opcode).

Request, as the real server sends it: POST ``opts.url`` with ``opts.body`` as JSON, the key
where the format expects it (``Authorization: Bearer`` for OpenAI-style formats, ``x-api-key``
for anthropic, ``?key=`` for gemini, verbatim for bedrock), then every ``opts.headers`` entry.

The provider's answer becomes a step's memo, which the engine stores, shows and sends back to
the app on every later request, so it is bounded like an app's answer (``sdk_call.py``): the
body is read up to ``AI_REPLY_MAX_BYTES`` and no further, and a 2xx body must be JSON the
engine accepts (``bodies.parse_json``: no NaN / Infinity, 64-bit integers, valid Unicode,
bounded depth). The call is bounded in time whatever ``--sdk-timeout`` says. An opcode whose
url is not http(s), or whose headers or key are not strings, is refused before any request.

Three outcomes: ``ok`` (the parsed JSON), ``failed`` (a network error or a status above 299:
retried, as the real server does) and ``unusable`` (the request or the answer is unusable:
the step fails at once with the reason, since the same request would get the same answer).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

from .bodies import JSONInputError, parse_json
from .limits import AI_CONNECT_TIMEOUT_S, AI_REPLY_MAX_BYTES, AI_REQUEST_MAX_S
from .sdk_call import canonical_json, read_capped


@dataclass
class AIAnswer:
    kind: str                   # "ok" | "failed" | "unusable"
    status: int = 0
    data: object = None         # the provider's JSON, for "ok"
    text: str = ""              # the body (or the network error), for "failed"
    message: str = ""           # the reason, for "unusable"


class AIRequestError(ValueError):
    """The opcode's request cannot be sent; the message says why."""


def build_request(opts) -> tuple[str, dict[str, str], bytes]:
    """``(url, headers, body)`` for an AIGateway opcode's ``opts``, or AIRequestError."""
    if not isinstance(opts, dict):
        raise AIRequestError("step.ai.infer: the opcode has no opts object")
    url, key, fmt = opts.get("url"), opts.get("auth_key") or "", opts.get("format") or ""
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise AIRequestError(f"step.ai.infer: the url must start with http:// or https:// "
                             f"and name a host (got {str(url)[:200]!r})")
    extra = opts.get("headers") or {}
    if not isinstance(key, str) or not isinstance(fmt, str) or not isinstance(extra, dict) \
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in extra.items()):
        raise AIRequestError("step.ai.infer: auth_key, format and every header name and "
                             "value must be strings")
    headers = {"content-type": "application/json"}
    if fmt == "anthropic":
        headers["x-api-key"] = key
    elif fmt == "gemini":
        url += ("&" if "?" in url else "?") + f"key={key}"
    elif fmt == "bedrock":
        headers["authorization"] = key
    elif key:
        headers["authorization"] = f"Bearer {key}"
    headers.update(extra)
    return url, headers, canonical_json(opts.get("body"))


def call_timeout(sdk_timeout_s: float) -> aiohttp.ClientTimeout:
    """The engine's SDK timeout, never unbounded (0, negative or inf would disable it)."""
    total = sdk_timeout_s if math.isfinite(sdk_timeout_s) and sdk_timeout_s > 0 \
        else AI_REQUEST_MAX_S
    return aiohttp.ClientTimeout(total=min(total, AI_REQUEST_MAX_S),
                                 sock_connect=AI_CONNECT_TIMEOUT_S)


async def call_model(session: aiohttp.ClientSession, opts, sdk_timeout_s: float) -> AIAnswer:
    try:
        url, headers, body = build_request(opts)
    except AIRequestError as exc:
        return AIAnswer("unusable", message=str(exc))
    try:
        async with session.post(url, data=body, headers=headers,
                                timeout=call_timeout(sdk_timeout_s)) as resp:
            status = resp.status
            raw = await read_capped(resp, AI_REPLY_MAX_BYTES)
    except Exception as exc:  # noqa: BLE001 - network errors are AI-gateway failures, retried
        return AIAnswer("failed", 0, text=str(exc) or type(exc).__name__)
    if raw is None:
        return AIAnswer("unusable", status, message=(
            f"step.ai.infer: the AI provider's answer (HTTP {status}) is larger than the limit "
            f"of {AI_REPLY_MAX_BYTES} bytes (output too large); the engine stopped reading it"))
    if status >= 300:
        return AIAnswer("failed", status, text=raw.decode("utf-8", errors="replace"))
    try:
        return AIAnswer("ok", status, data=parse_json(raw))
    except JSONInputError as exc:
        what = "is not JSON" if exc.syntax else "cannot be stored"
        return AIAnswer("unusable", status,
                        message=f"step.ai.infer: the AI provider's answer {what}: {exc}")
