"""What makes the lab's offline model endpoint behave like a real model API under load.

``ModelGate`` sits in front of every completion the endpoint answers (``chat_agent.
openai_compat.create_app(gate=...)``), whoever sends it: the Agents SDK inside a ``step.run``
(the OpenAI Python client) or the engine making a ``step.ai.infer`` call. So both paths share:

* **a requests-per-minute limit on the engine clock.** A sliding window: a request is admitted
  while fewer than ``rpm`` admitted requests fall in the last 60 s of *engine* time; above it
  the answer is OpenAI's 429 (``rate_limit_exceeded``) with ``retry-after`` = seconds until the
  oldest request leaves the window, plus the ``x-ratelimit-*`` headers. On the embedded
  engine's virtual clock, advancing a minute (or the clock jumping to a retry's backoff) frees
  the window; no real minute passes.
* **a script of failures for the next N requests**: 429, a 5xx, or ``"timeout"`` (the answer
  is held ``hold_s`` real seconds, longer than the Worker's client timeout, then a 504).
  Scripted failures are answered before the limit is checked and do not use up the window.
* **a ledger** of every request: model, caller kind, status, tokens in/out (from the answer's
  ``usage``), engine time. ``usage()`` sums it per model and caller.

``now_ms`` is injected (the lab passes its engine clock), so the logic is tested with a fake.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio.to_thread
from fastapi.responses import JSONResponse

WINDOW_MS = 60_000
FAIL_STATUSES = (429, 500, 502, 503, "timeout")
DEFAULT_HOLD_S = 6.0


@dataclass(frozen=True)
class Call:
    """One request the endpoint received."""

    at_ms: int
    model: str
    caller: str
    status: int
    tokens_in: int = 0
    tokens_out: int = 0
    scripted: bool = False


@dataclass
class ModelUsage:
    """``lab.model.usage()``: totals and one row per (model, caller)."""

    requests: int = 0
    ok: int = 0
    rate_limited: int = 0
    errors: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    rows: list[dict] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        return self.tokens_in + self.tokens_out

    def frame(self):
        import pandas as pd

        return pd.DataFrame(self.rows, columns=["model", "caller", "requests", "ok", "429s",
                                                "errors", "tokens_in", "tokens_out"])

    def __repr__(self) -> str:
        lines = [f"model usage: {self.requests} requests, {self.ok} answered, "
                 f"{self.rate_limited} × 429, {self.errors} other errors, "
                 f"{self.tokens_in} tokens in / {self.tokens_out} out"]
        lines += [f"  {r['model']} via {r['caller']}: {r['requests']} requests, "
                  f"{r['429s']} × 429, {r['tokens_in']} in / {r['tokens_out']} out"
                  for r in self.rows]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return self.frame().to_html(index=False)


def summarize(calls: list[Call]) -> ModelUsage:
    per: dict[tuple[str, str], dict] = {}
    for call in calls:
        row = per.setdefault((call.model, call.caller), {
            "model": call.model, "caller": call.caller, "requests": 0, "ok": 0, "429s": 0,
            "errors": 0, "tokens_in": 0, "tokens_out": 0})
        kind = "ok" if call.status < 300 else ("429s" if call.status == 429 else "errors")
        row["requests"] += 1
        row[kind] += 1
        row["tokens_in"] += call.tokens_in
        row["tokens_out"] += call.tokens_out
    rows = sorted(per.values(), key=lambda r: (r["model"], r["caller"]))
    return ModelUsage(requests=sum(r["requests"] for r in rows), ok=sum(r["ok"] for r in rows),
                      rate_limited=sum(r["429s"] for r in rows),
                      errors=sum(r["errors"] for r in rows),
                      tokens_in=sum(r["tokens_in"] for r in rows),
                      tokens_out=sum(r["tokens_out"] for r in rows), rows=rows)


def _openai_error(status: int, message: str, kind: str, code: str | None,
                  headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": None,
                                   "code": code}}, status_code=status, headers=headers)


class ModelGate:
    def __init__(self, now_ms: Callable[[], int], *, hold_s: float = DEFAULT_HOLD_S) -> None:
        self._now_ms = now_ms
        self._lock = threading.Lock()
        self.rpm: int | None = None
        self.window_ms = WINDOW_MS  # how long the limit's "minute" lasts, engine ms
        self.hold_s = hold_s
        self._window: deque[int] = deque()
        self._script: deque[int | str] = deque()
        self._calls: list[Call] = []

    # -- configuration (called from the kernel thread) ----------------------------------
    def limit(self, rpm: int | None, window_ms: int = WINDOW_MS) -> None:
        if rpm is not None and (isinstance(rpm, bool) or not isinstance(rpm, int) or rpm < 1):
            raise ValueError(f"rpm is a whole number of requests per minute >= 1 (or None "
                             f"for no limit), got {rpm!r}")
        if isinstance(window_ms, bool) or not isinstance(window_ms, int) or window_ms < 1000:
            raise ValueError(f"the limit's minute lasts at least 1 s, got {window_ms!r} ms")
        with self._lock:
            self.rpm = rpm
            self.window_ms = window_ms
            self._window.clear()

    def fail(self, times: int, status: int | str) -> None:
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            raise ValueError(f"times must be a whole number >= 1, got {times!r}")
        if status not in FAIL_STATUSES:
            raise ValueError(f"status must be one of {FAIL_STATUSES}, got {status!r}")
        with self._lock:
            self._script.extend([status] * times)

    def reset(self) -> None:
        with self._lock:
            self.rpm = None
            self.window_ms = WINDOW_MS
            self._window.clear()
            self._script.clear()
            self._calls.clear()

    def pending_failures(self) -> list[int | str]:
        with self._lock:
            return list(self._script)

    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def usage(self) -> ModelUsage:
        return summarize(self.calls())

    # -- the endpoint's side (called on the model host's event loop) --------------------
    def decide(self, model: str, caller: str, now: int) -> tuple[int | str, dict] | None:
        """None to answer normally, else (status, headers) of the refusal. Records it."""
        with self._lock:
            if self._script:
                status = self._script.popleft()
                self._calls.append(Call(now, model, caller,
                                        504 if status == "timeout" else int(status),
                                        scripted=True))
                return status, {}
            if self.rpm is None:
                return None
            while self._window and self._window[0] <= now - self.window_ms:
                self._window.popleft()
            if len(self._window) >= self.rpm:
                wait_s = max(1, math.ceil((self._window[0] + self.window_ms - now) / 1000))
                self._calls.append(Call(now, model, caller, 429))
                return 429, {"retry-after": str(wait_s),
                             "x-ratelimit-limit-requests": str(self.rpm),
                             "x-ratelimit-remaining-requests": "0",
                             "x-ratelimit-reset-requests": f"{wait_s}s"}
            self._window.append(now)
            return None

    async def admit(self, model: str, caller: str):
        now = await anyio.to_thread.run_sync(self._now_ms)
        decision = self.decide(model, caller, now)
        if decision is None:
            return None
        status, headers = decision
        if status == "timeout":
            await asyncio.sleep(self.hold_s)
            return _openai_error(504, "lab.model.fail: scripted timeout (the answer was held "
                                 f"{self.hold_s:g} s)", "timeout", "timeout")
        if status == 429 and headers:
            return _openai_error(
                429, f"Rate limit reached for {model} on requests per min (RPM): Limit "
                     f"{self.rpm}, Used {self.rpm}, Requested 1. Please try again in "
                     f"{headers['retry-after']}s. (lab.model.limit, engine clock)",
                "requests", "rate_limit_exceeded", headers)
        if status == 429:
            return _openai_error(429, "lab.model.fail: scripted rate limit (HTTP 429)",
                                 "requests", "rate_limit_exceeded", {"retry-after": "20"})
        return _openai_error(int(status), f"lab.model.fail: scripted server error (HTTP "
                             f"{status})", "server_error", None)

    async def record(self, model: str, caller: str, usage: dict) -> None:
        now = await anyio.to_thread.run_sync(self._now_ms)
        with self._lock:
            self._calls.append(Call(now, model, caller, 200,
                                    int(usage.get("prompt_tokens") or 0),
                                    int(usage.get("completion_tokens") or 0)))
