"""One request from the engine to an SDK endpoint, and its answer, as the dev server does it.

Request: POST <function url with stepId>, JCS-style JSON body {event, events, steps, ctx,
use_api, version}. Answer: 206 + ops, 200 + the function's return value, or an error
status with the SDK's error body and the no-retry / retry-after headers.

An answer the engine cannot use is an error with the reason, never a silent no-op: a body
over ``SDK_REPLY_MAX_BYTES`` (the read stops there), a 206 without a list of operations (an
empty list, ``null``, text), an operation without its ``op`` and ``id``, more operations than
``MAX_OPS_PER_REPLY``, and, with a signing key, an answer whose ``X-Inngest-Signature`` is
missing or wrong (the SDK signs every answer in production mode). These are not retried:
the same request would get the same answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp

from .bodies import JSONInputError, parse_json
from .ids import DEV_ACCOUNT_ID
from .limits import MAX_OPS_PER_REPLY, SDK_REPLY_MAX_BYTES


@dataclass
class SdkAnswer:
    kind: str                   # "ops" | "done" | "error" | "unreachable"
    status: int = 0
    ops: list[dict] = field(default_factory=list)
    body: object = None         # parsed JSON (or text) of the answer
    no_retry: bool = False
    retry_after: str | None = None
    message: str = ""


def step_url(base_url: str, step_id: str) -> str:
    parts = urlsplit(base_url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "stepId"]
    query.append(("stepId", step_id))
    return urlunsplit(parts._replace(query=urlencode(query)))


def canonical_json(obj) -> bytes:
    """Sorted keys, no spaces: the JCS form the SDK re-canonicalises when it verifies."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signing_secret(signing_key: str) -> bytes:
    key = signing_key
    if key.startswith("signkey-"):
        key = key.split("-", 2)[2] if key.count("-") >= 2 else key
    return key.encode()


def sign(body: bytes, signing_key: str, now_s: int | None = None) -> str:
    t = int(now_s if now_s is not None else time.time())
    mac = hmac.new(signing_secret(signing_key), body + str(t).encode(), hashlib.sha256)
    return f"t={t}&s={mac.hexdigest()}"


def verify(body: bytes, header: str | None, signing_key: str) -> bool:
    if not header:
        return False
    try:
        fields = dict(part.split("=", 1) for part in header.split("&"))
        expected = sign(body, signing_key, int(fields["t"])).split("&s=")[1]
    except (KeyError, ValueError):
        return False
    return hmac.compare_digest(expected, fields.get("s", ""))


def hashed_signing_key(signing_key: str) -> str:
    """Bearer token form: sha256 hex of the hex-decoded key (prefix removed)."""
    secret = signing_secret(signing_key).decode()
    try:
        raw = bytes.fromhex(secret)
    except ValueError:
        raw = secret.encode()
    return hashlib.sha256(raw).hexdigest()


async def call_sdk(session: aiohttp.ClientSession, url: str, payload: dict, headers: dict,
                   timeout_s: float, signing_key: str | None = None) -> SdkAnswer:
    body = canonical_json(payload)
    headers = {"content-type": "application/json", "account-id": DEV_ACCOUNT_ID, **headers}
    if signing_key:
        headers["x-inngest-signature"] = sign(body, signing_key)
    try:
        async with session.post(url, data=body, headers=headers,
                                timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
            raw = await _read_capped(resp)
            if raw is None:
                return SdkAnswer("error", resp.status, no_retry=True,
                                 message=f"the app's answer is larger than the limit of "
                                         f"{SDK_REPLY_MAX_BYTES} bytes (output too large)")
            if signing_key and not verify(raw, resp.headers.get("x-inngest-signature"),
                                          signing_key):
                return SdkAnswer("error", resp.status, no_retry=True,
                                 message="the app's answer is not signed with the engine's "
                                         "signing key (X-Inngest-Signature missing or "
                                         "wrong); it was not used")
            return parse_answer(resp.status, resp.headers, raw)
    except aiohttp.ClientConnectorError as exc:
        return SdkAnswer("unreachable", message=f"could not reach the app at {url}: {exc}")
    except asyncio.TimeoutError:
        return SdkAnswer("error", message=f"the app did not answer within {timeout_s:g} s")
    except aiohttp.ClientError as exc:
        return SdkAnswer("error", message=f"request to the app failed: {exc!r}")


async def _read_capped(resp: aiohttp.ClientResponse) -> bytes | None:
    """The answer's body, or None once it passes SDK_REPLY_MAX_BYTES (reading stops)."""
    if resp.content_length is not None and resp.content_length > SDK_REPLY_MAX_BYTES:
        return None
    raw = bytearray()
    async for chunk in resp.content.iter_chunked(64 * 1024):
        raw.extend(chunk)
        if len(raw) > SDK_REPLY_MAX_BYTES:
            return None
    return bytes(raw)


def _ops_problem(body) -> str | None:
    if not isinstance(body, (list, dict)) or not body:
        shown = "an empty list" if body == [] else "null" if body is None else repr(body)[:200]
        return f"the app answered 206 without any operation (its body: {shown})"
    ops = body if isinstance(body, list) else [body]
    if len(ops) > MAX_OPS_PER_REPLY:
        return f"the app answered {len(ops)} operations, over the limit of {MAX_OPS_PER_REPLY}"
    for n, op in enumerate(ops):
        if not isinstance(op, dict) or not isinstance(op.get("op"), str) \
                or not isinstance(op.get("id"), str) or not op["id"]:
            return (f"operation {n} of the app's 206 answer has no 'op' and 'id' strings: "
                    f"{repr(op)[:200]}")
    return None


def parse_answer(status: int, headers, raw: bytes) -> SdkAnswer:
    try:
        body = parse_json(raw) if raw.strip() else None
    except JSONInputError as exc:
        if not exc.syntax:        # JSON, but nothing the engine could store or show again
            return SdkAnswer("error", status, no_retry=True,
                             message=f"the app's answer cannot be used: {exc}")
        body = raw.decode("utf-8", errors="replace")
    no_retry = headers.get("x-inngest-no-retry", "").lower() == "true"
    retry_after = headers.get("retry-after")
    from_sdk = "x-inngest-sdk" in headers
    if 200 <= status < 300 and not from_sdk:
        return SdkAnswer("error", status, body=body,
                         message="The response did not come from an Inngest SDK")
    if status == 206:
        problem = _ops_problem(body)
        if problem:
            return SdkAnswer("error", 206, no_retry=True, message=problem)
        ops = body if isinstance(body, list) else [body]
        return SdkAnswer("ops", 206, ops=ops, body=body, no_retry=no_retry)
    if 200 <= status < 300:
        return SdkAnswer("done", status, body=body)
    message = body.get("message") if isinstance(body, dict) else None
    return SdkAnswer("error", status, body=body, no_retry=no_retry, retry_after=retry_after,
                     message=message or f"the app answered HTTP {status}")
