"""Fault injection in the lab's own function host, so chaos lessons run on any server.

The embedded engine injects faults itself (``devserver/chaos.py``). A real ``inngest dev``
cannot, so on a real server ``lab.chaos`` installs the same rules here instead: an ASGI layer
in front of the SDK's serve endpoint, in the thread host and in the process host alike.

How it reaches a chosen step before its body runs: while a function has live rules, each
discovery call (``stepId=step``) is passed to the SDK with ``ctx.disable_immediate_execution``
set, so the SDK answers with a *planned* step instead of running it. The server then calls
again targeting that one step (``stepId=<sha1 of the step id>``), and that call is where a
rule acts, exactly as in the embedded engine:

* ``raise``: answer as the SDK would for a body that raised (a 206 with a StepError op, or
  StepFailed on the last attempt) without running the body;
* ``http_503``: answer 503, not from the SDK;
* ``timeout``: hold the call for ``timeout_s`` seconds, then answer 504;
* ``lose_response``: run the body, then drop the SDK's answer and answer 502: the step ran
  but the server never heard, so it runs again;
* ``slow`` (``lab.chaos.slow_step``): run the body, then hold the SDK's answer for the rule's
  ``duration`` seconds, so the step takes that long while its call (and its concurrency slot)
  stays open. ``times`` may be None: every call until cleared.

``retry_after_s`` (set by the lab on a real server only) adds ``Retry-After`` to every
answer the server will retry: injected ones, the SDK's StepError answers and its retryable
500s. The real server honours the header (clamped to 1 s … 24 h), so a failing step retries
after seconds instead of the dev server's 15 s … 2 h backoff.

Control, for the kernel (either host kind): ``GET``/``POST``/``DELETE`` ``/lab/faults``,
``PUT /lab/faults/settings`` and ``GET /lab/faults/calls`` (the host's record of the calls
it answered, ``host_calls.py``) on the host's own port.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from urllib.parse import parse_qs

from .client import step_hash
from .host_calls import CallLog, fn_matches

CONTROL_PATH = "/lab/faults"
MODES = ("raise", "http_503", "timeout", "lose_response", "slow")
DEFAULT_TIMEOUT_S = 2.0


class FaultRules:
    """Rules in the chaos engine's shape (id, function, step, times, used, remaining, mode)."""

    def __init__(self) -> None:
        self.rules: list[dict] = []
        self.retry_after_s: float | None = None
        self.timeout_s = DEFAULT_TIMEOUT_S
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, function: str, step: str, times: int | None = 1, mode: str = "raise",
            duration: float | None = None) -> dict:
        if mode not in MODES:
            raise ValueError(f"unknown chaos mode {mode!r}; use one of {', '.join(MODES)}")
        if not isinstance(function, str) or not function or not isinstance(step, str) or not step:
            raise ValueError("a chaos rule needs a function and a step")
        if not (times is None and mode == "slow") and (
                isinstance(times, bool) or not isinstance(times, int) or times < 1):
            raise ValueError(f"times must be a whole number >= 1, got {times!r}")
        if mode == "slow" and (isinstance(duration, bool)
                               or not isinstance(duration, (int, float)) or duration <= 0):
            raise ValueError(f"a slow step needs a duration in seconds > 0, got {duration!r}")
        with self._lock:
            rule = {"id": f"host-chaos-{next(self._ids)}", "function": function, "step": step,
                    "times": times, "used": 0, "remaining": times, "mode": mode,
                    "where": "host"}
            if mode == "slow":
                rule["duration"] = float(duration)
            self.rules.append(rule)
            return dict(rule)

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def snapshot(self) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self.rules]

    @staticmethod
    def _fn_matches(rule: dict, slug: str) -> bool:
        return fn_matches(rule["function"], slug)

    @staticmethod
    def _live(rule: dict) -> bool:
        return rule["remaining"] is None or rule["remaining"] > 0

    def active_for(self, slug: str) -> bool:
        with self._lock:
            return any(self._live(r) and self._fn_matches(r, slug) for r in self.rules)

    def take(self, slug: str, hashed_step: str) -> dict | None:
        with self._lock:
            for rule in self.rules:
                if self._live(rule) and self._fn_matches(rule, slug) \
                        and step_hash(rule["step"]) == hashed_step:
                    if rule["remaining"] is not None:
                        rule["remaining"] -= 1
                    rule["used"] += 1
                    return dict(rule)
        return None


def chaos_message(rule: dict) -> str:
    of = "every call" if rule["times"] is None else rule["times"]
    return (f"lab chaos ({rule['mode']}, in the function host): injected failure of step "
            f"{rule['step']!r} in {rule['function']} ({rule['used']} of {of})")


class FaultInjector:
    """ASGI middleware: applies ``FaultRules`` to the SDK's serve endpoint and answers the
    control endpoint. Everything else passes through untouched."""

    def __init__(self, app, rules: FaultRules | None = None) -> None:
        self.app = app
        self.rules = rules or FaultRules()
        self.calls = CallLog()  # off until the lab turns it on (a real server: lab.stats)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"].startswith(CONTROL_PATH):
            await self._control(scope, receive, send)
            return
        query = parse_qs(scope.get("query_string", b"").decode())
        slug = (query.get("fnId") or [""])[0]
        if scope["method"] != "POST" or not slug:
            await self.app(scope, receive, send)
            return
        chaotic = self.rules.active_for(slug)
        if not chaotic and self.rules.retry_after_s is None and not self.calls.enabled:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        call = self.calls.begin(slug, body) if self.calls.enabled else None
        try:
            await self._answer(scope, send, query, slug, chaotic, body)
        finally:
            if call is not None:
                self.calls.end(call)

    async def _answer(self, scope, send, query: dict, slug: str, chaotic: bool,
                      body: bytes) -> None:
        target = (query.get("stepId") or ["step"])[0]
        rule = self.rules.take(slug, target) if chaotic and target != "step" else None
        if chaotic and target == "step":
            body = _force_planning(body)
        if rule is not None and rule["mode"] not in ("lose_response", "slow"):
            await self._inject(rule, body, target, send)
            return
        status, headers, answer = await self._call_sdk(scope, body)
        if rule is not None and rule["mode"] == "slow":
            await asyncio.sleep(rule["duration"])  # the call stays open: the slot stays taken
            rule = None
        if rule is not None:  # lose_response: the body ran; the server never hears of it
            await _respond(send, 502, _text_headers(), chaos_message(rule).encode(),
                           self.rules.retry_after_s)
            return
        if self.rules.retry_after_s is not None and _retryable(status, headers, answer):
            headers = _with_retry_after(headers, self.rules.retry_after_s)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    async def _call_sdk(self, scope, body: bytes) -> tuple[int, list, bytes]:
        headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        inner_scope = dict(scope, headers=headers)
        sent = False

        async def replay():
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        out = {"status": 500, "headers": [], "body": b""}

        async def capture(message):
            if message["type"] == "http.response.start":
                out["status"], out["headers"] = message["status"], list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                out["body"] += message.get("body", b"")

        await self.app(inner_scope, replay, capture)
        return out["status"], out["headers"], out["body"]

    async def _inject(self, rule: dict, body: bytes, target: str, send) -> None:
        retry_after = self.rules.retry_after_s
        if rule["mode"] == "http_503":
            await _respond(send, 503, _text_headers(), chaos_message(rule).encode(), retry_after)
        elif rule["mode"] == "timeout":
            await asyncio.sleep(self.rules.timeout_s)
            await _respond(send, 504, _text_headers(), chaos_message(rule).encode(), retry_after)
        else:  # raise: what the SDK answers when the body raised
            ctx = _json(body).get("ctx") or {}
            attempt, max_attempts = ctx.get("attempt") or 0, ctx.get("max_attempts")
            final = max_attempts is not None and attempt + 1 >= max_attempts
            op = {"id": target, "name": rule["step"], "displayName": rule["step"],
                  "op": "StepFailed" if final else "StepError", "opts": None, "data": None,
                  "userland": {"id": rule["step"], "index": None},
                  "error": {"code": "unknown", "name": "ChaosError",
                            "message": chaos_message(rule), "stack": ""}}
            headers = _sdk_headers()
            if final:
                headers.append((b"x-inngest-no-retry", b"true"))
            await _respond(send, 206, headers, json.dumps([op]).encode(),
                           None if final else retry_after)

    async def _control(self, scope, receive, send) -> None:
        body = _json(await _read_body(receive))
        method, path = scope["method"], scope["path"]
        try:
            if path == CONTROL_PATH + "/settings" and method == "PUT":
                if "retry_after_s" in body:
                    value = body["retry_after_s"]
                    self.rules.retry_after_s = None if value is None else max(1.0, float(value))
                if "timeout_s" in body:
                    self.rules.timeout_s = max(0.0, float(body["timeout_s"]))
                if "record_calls" in body:
                    if not isinstance(body["record_calls"], bool):
                        raise ValueError("record_calls is true or false")
                    self.calls.enabled = body["record_calls"]
                answer = self._state()
            elif path == CONTROL_PATH + "/calls" and method == "GET":
                wanted = (parse_qs(scope.get("query_string", b"").decode()).get("function")
                          or [None])[0]
                answer = {"calls": self.calls.calls(wanted), "recording": self.calls.enabled}
            elif path == CONTROL_PATH and method == "GET":
                answer = self._state()
            elif path == CONTROL_PATH and method == "POST":
                answer = self.rules.add(body.get("function"), body.get("step"),
                                        body.get("times", 1), body.get("mode", "raise"),
                                        body.get("duration"))
            elif path == CONTROL_PATH and method == "DELETE":
                self.rules.clear()
                answer = self._state()
            else:
                await _respond(send, 404, _json_headers(),
                               json.dumps({"error": f"no {method} {path}"}).encode())
                return
        except (TypeError, ValueError) as exc:
            await _respond(send, 400, _json_headers(), json.dumps({"error": str(exc)}).encode())
            return
        await _respond(send, 200, _json_headers(), json.dumps(answer).encode())

    def _state(self) -> dict:
        return {"rules": self.rules.snapshot(), "retry_after_s": self.rules.retry_after_s,
                "timeout_s": self.rules.timeout_s, "record_calls": self.calls.enabled}


# -- helpers ---------------------------------------------------------------------------------
async def _read_body(receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _json(raw: bytes) -> dict:
    try:
        value = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _force_planning(body: bytes) -> bytes:
    payload = _json(body)
    if not isinstance(payload.get("ctx"), dict):
        return body
    payload["ctx"]["disable_immediate_execution"] = True
    return json.dumps(payload).encode()


def _retryable(status: int, headers: list, body: bytes) -> bool:
    names = {k.lower(): v for k, v in headers}
    if names.get(b"x-inngest-no-retry") == b"true" or b"retry-after" in names:
        return False
    if status == 206:
        try:
            ops = json.loads(body or b"[]")
        except ValueError:
            return False
        return any(isinstance(op, dict) and op.get("op") == "StepError" for op in ops or [])
    return status >= 500


def _with_retry_after(headers: list, seconds: float | None) -> list:
    if seconds is None:
        return headers
    return [*headers, (b"retry-after", str(max(1, round(seconds))).encode())]


def _sdk_headers() -> list:
    from inngest._internal import const

    return [(b"content-type", b"application/json"),
            (b"x-inngest-sdk", f"inngest-py:v{const.VERSION}".encode()),
            (b"x-inngest-req-version", b"2")]


def _text_headers() -> list:
    return [(b"content-type", b"text/plain; charset=utf-8")]


def _json_headers() -> list:
    return [(b"content-type", b"application/json")]


async def _respond(send, status: int, headers: list, body: bytes,
                   retry_after: float | None = None) -> None:
    headers = _with_retry_after(list(headers), retry_after)
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
