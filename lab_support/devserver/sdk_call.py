"""One request from the engine to an SDK endpoint, and its answer, as the dev server does it.

Request: POST <function url with stepId>, JCS-style JSON body {event, events, steps, ctx,
use_api, version}. Answer: 206 + ops, 200 + the function's return value, or an error
status with the SDK's error body and the no-retry / retry-after headers.
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

from .ids import DEV_ACCOUNT_ID


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
            raw = await resp.read()
            return parse_answer(resp.status, resp.headers, raw)
    except aiohttp.ClientConnectorError as exc:
        return SdkAnswer("unreachable", message=f"could not reach the app at {url}: {exc}")
    except asyncio.TimeoutError:
        return SdkAnswer("error", message=f"the app did not answer within {timeout_s:g} s")
    except aiohttp.ClientError as exc:
        return SdkAnswer("error", message=f"request to the app failed: {exc!r}")


def parse_answer(status: int, headers, raw: bytes) -> SdkAnswer:
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = raw.decode("utf-8", errors="replace")
    no_retry = headers.get("x-inngest-no-retry", "").lower() == "true"
    retry_after = headers.get("retry-after")
    from_sdk = "x-inngest-sdk" in headers
    if 200 <= status < 300 and not from_sdk:
        return SdkAnswer("error", status, body=body,
                         message="The response did not come from an Inngest SDK")
    if status == 206:
        ops = body if isinstance(body, list) else [body] if isinstance(body, dict) else []
        return SdkAnswer("ops", 206, ops=ops, body=body, no_retry=no_retry)
    if 200 <= status < 300:
        return SdkAnswer("done", status, body=body)
    message = body.get("message") if isinstance(body, dict) else None
    return SdkAnswer("error", status, body=body, no_retry=no_retry, retry_after=retry_after,
                     message=message or f"the app answered HTTP {status}")
