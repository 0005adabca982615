"""Flow control, evaluated when a run is scheduled (and, for concurrency, per SDK call).

Same semantics as the dev server (see the protocol facts, section 6):
* concurrency: counters held only while an SDK request is in flight; keyed per value and
  scoped to the function, the environment or the account; over the limit -> wait, never drop.
* throttle: GCRA, ``limit + burst`` instant starts, then one per ``period/limit``; delays.
* rate limit: GCRA with burst ``floor(limit/10)``; over the limit -> the run is Skipped.
* idempotency: a rate limit of 1 per 24 h on its key (it replaces any rate limit).
* debounce and batching buffer events (see ``Buffers``), priority reorders ready work.
"""

from __future__ import annotations

import logging

from . import expressions
from .durations import parse_duration_ms

log = logging.getLogger("lab_support.devserver")
PRIORITY_CLAMP_S = 43_200
DAY_MS = 86_400_000


def effective_rate_limit(config: dict) -> dict | None:
    if config.get("idempotency"):
        return {"limit": 1, "period": "24h", "key": config["idempotency"]}
    return config.get("rateLimit")


class Flow:
    def __init__(self, engine) -> None:
        self.engine = engine

    @property
    def meta(self) -> dict:
        return self.engine.store.meta

    # -- concurrency -----------------------------------------------------------------------
    def concurrency_counters(self, fn, event: dict) -> list[list]:
        counters = []
        for spec in fn.config.get("concurrency") or []:
            limit = int(spec.get("limit") or 0)
            if limit <= 0:
                continue
            scope = (spec.get("scope") or "fn").lower()
            key_expr = spec.get("key")
            if key_expr:
                value = expressions.key_value(key_expr, event)
                if value is None:
                    continue
                owner = fn.id if scope == "fn" else scope
                counters.append([f"{scope}:{owner}:{key_expr}:{value}", limit])
            else:
                counters.append([f"fn:{fn.id}", limit])
        return counters

    # -- GCRA (throttle, rate limit) -------------------------------------------------------
    def _gcra(self, name: str, limit: int, period_ms: int, burst: int, now: int,
              delay: bool) -> int | None:
        """Return the start time allowed (now or later), or None when ``delay`` is False and
        the start is over the limit."""
        limit = max(1, limit)
        emission = period_ms / limit
        tolerance = emission * burst
        tat = max(float(self.meta.get(name, 0)), float(now))
        allowed_at = tat - tolerance
        if allowed_at > now and not delay:
            return None
        start = max(now, int(allowed_at))
        self.engine.store.set_meta(name, tat + emission)
        return start

    def throttle_start(self, fn, event: dict, now: int) -> int:
        spec = fn.config.get("throttle")
        if not spec:
            return now
        key = ""
        if spec.get("key"):
            key = expressions.key_value(spec["key"], event) or ""
        limit = max(1, int(spec.get("limit") or 1))
        burst = int(spec.get("burst") if spec.get("burst") is not None else 1)
        # limit + burst instant starts from idle, then one per period/limit.
        return self._gcra(f"throttle:{fn.id}:{key}", limit, parse_duration_ms(spec["period"]),
                          limit + burst - 1, now, delay=True)

    def rate_limited(self, fn, event: dict, now: int) -> str | None:
        spec = effective_rate_limit(fn.config)
        if not spec:
            return None
        key = ""
        if spec.get("key"):
            value = expressions.key_value(spec["key"], event)
            if value is None:
                return None
            key = value
        limit = max(1, int(spec.get("limit") or 1))
        kind = "idempotency" if fn.config.get("idempotency") else "rate limit"
        allowed = self._gcra(f"ratelimit:{fn.id}:{key}", limit,
                             parse_duration_ms(spec["period"]), limit // 10, now, delay=False)
        if allowed is None:
            return f"{kind}: over {limit} per {spec['period']} for key {key or '(function)'}"
        return None

    # -- priority --------------------------------------------------------------------------
    def priority_factor(self, fn, event: dict) -> int:
        spec = fn.config.get("priority")
        if not spec or not spec.get("run"):
            return 0
        try:
            value = expressions.evaluate(spec["run"], event)
        except expressions.ExpressionError as exc:
            log.warning("priority expression ignored: %s", exc)
            return 0
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return 0
        return max(-PRIORITY_CLAMP_S, min(PRIORITY_CLAMP_S, int(value)))

    # -- singleton -------------------------------------------------------------------------
    def singleton_key(self, fn, event: dict) -> str | None:
        spec = fn.config.get("singleton")
        if not spec:
            return None
        if spec.get("key"):
            value = expressions.key_value(spec["key"], event)
            return None if value is None else f"singleton:{fn.id}:{value}"
        return f"singleton:{fn.id}"


class Buffers:
    """Debounce and batch buffers: events wait here, then one run starts."""

    def __init__(self, engine) -> None:
        self.engine = engine

    def debounce(self, fn, event, now: int) -> None:
        spec = fn.config["debounce"]
        key = ""
        if spec.get("key"):
            key = expressions.key_value(spec["key"], event.wire()) or ""
        name = f"debounce:{fn.slug}:{key}"
        period = parse_duration_ms(spec["period"])
        state = self.engine.store.meta.get(name)
        first_at = state["first_at"] if state else now
        due = now + period
        if spec.get("timeout"):
            due = min(due, first_at + parse_duration_ms(spec["timeout"]))
        if state:
            self.engine.scheduler.remove(state["item_id"])
        item = self.engine.timer("debounce", "", due, payload={"buffer": name})
        self.engine.store.set_meta(name, {"fn": fn.slug, "event": event.internal_id,
                                          "first_at": first_at, "item_id": item.id})

    def batch(self, fn, event, now: int) -> list | None:
        """Add to the batch; return the full batch when it is ready to run now."""
        spec = fn.config["batchEvents"]
        key = ""
        if spec.get("key"):
            key = expressions.key_value(spec["key"], event.wire()) or ""
        name = f"batch:{fn.slug}:{key}"
        state = self.engine.store.meta.get(name) or {"fn": fn.slug, "events": [],
                                                      "item_id": None}
        state["events"].append(event.internal_id)
        if len(state["events"]) >= int(spec["maxSize"]):
            if state["item_id"]:
                self.engine.scheduler.remove(state["item_id"])
            self.engine.store.meta.pop(name, None)
            self.engine.store.touch("meta", name)
            return state["events"]
        if not state["item_id"]:
            item = self.engine.timer("batch", "", now + parse_duration_ms(spec["timeout"]),
                                     payload={"buffer": name})
            state["item_id"] = item.id
        self.engine.store.set_meta(name, state)
        return None

    def fire(self, buffer: str) -> tuple[str, list[str]] | None:
        state = self.engine.store.meta.pop(buffer, None)
        self.engine.store.touch("meta", buffer)
        if not state:
            return None
        events = state["events"] if "events" in state else [state["event"]]
        return state["fn"], events
