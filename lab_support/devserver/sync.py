"""App sync: the SDK's ``POST /fn/register``, and the ``PUT`` ping that asks an SDK to sync.

The registration is validated the way the server does (triggers, cron, CEL, durations,
flow-control combinations) and every option the engine does not implement is rejected by
name, so nothing is silently ignored. A valid sync replaces the app's function set.
"""

from __future__ import annotations

import hashlib
import json

import httpx

from . import cron, expressions, tiers
from .durations import DurationError, parse_duration_ms
from .ids import stable_uuid
from .models import App, Function
from .sdk_call import canonical_json, sign

KNOWN_FN_KEYS = {"id", "name", "triggers", "steps", "concurrency", "throttle", "rateLimit",
                 "debounce", "priority", "batchEvents", "idempotency", "cancel", "timeouts",
                 "singleton"}
KNOWN_APP_KEYS = {"appname", "appName", "appVersion", "capabilities", "deploy_type",
                  "deployType", "framework", "functions", "sdk", "url", "v"}


class SyncError(ValueError):
    pass


def validate_function(fn: dict) -> list[str]:
    problems: list[str] = []
    slug = fn.get("id") or "?"
    say = problems.append
    unknown = set(fn) - KNOWN_FN_KEYS
    if unknown:
        say(f"{slug}: unsupported option(s) {sorted(unknown)} — the embedded engine does not "
            "implement them")
    triggers = fn.get("triggers") or []
    if not triggers:
        say(f"{slug}: needs at least one trigger")
    if len(triggers) > 10:
        say(f"{slug}: at most 10 triggers")
    for trig in triggers:
        if trig.get("cron"):
            problem = (cron.validate(trig["cron"])   # robfig/cron rules, TZ= prefix included
                       or cron.jitter_problem(trig.get("jitter")))
            if problem:
                say(f"{slug}: {problem}")
        elif trig.get("event"):
            if len(trig["event"]) > 255:
                say(f"{slug}: trigger event name longer than 255 characters")
            if trig.get("expression"):
                _cel(trig["expression"], slug, problems)
        else:
            say(f"{slug}: a trigger needs an event or a cron")
    step = (fn.get("steps") or {}).get("step") or {}
    url = (step.get("runtime") or {}).get("url", "")
    if not url.startswith(("http://", "https://")):
        say(f"{slug}: step URL must be http(s), got {url!r}")
    conc = fn.get("concurrency") or []
    if len(conc) > 2:
        say(f"{slug}: at most 2 concurrency limits")
    for c in conc:
        scope = (c.get("scope") or "fn").lower()
        if scope not in ("fn", "env", "account"):
            say(f"{slug}: concurrency scope must be fn, env or account")
        if scope != "fn" and not c.get("key"):
            say(f"{slug}: concurrency with scope {scope} needs a key")
        if c.get("key"):
            _cel(c["key"], slug, problems)
    for name in ("throttle", "rateLimit", "debounce"):
        spec = fn.get(name)
        if spec:
            _dur(spec.get("period"), f"{slug}: {name}.period", problems)
            if spec.get("key"):
                _cel(spec["key"], slug, problems)
    if fn.get("rateLimit") and _ms(fn["rateLimit"].get("period")) > 86_400_000:
        say(f"{slug}: rate limit period longer than 24h")
    deb = fn.get("debounce")
    if deb:
        p = _ms(deb.get("period"))
        if p and not 1000 <= p <= 7 * 86_400_000:
            say(f"{slug}: debounce period must be between 1s and 7d")
        if deb.get("timeout"):
            _dur(deb["timeout"], f"{slug}: debounce.timeout", problems)
    batch = fn.get("batchEvents")
    if batch:
        _dur(batch.get("timeout"), f"{slug}: batchEvents.timeout", problems)
        if _ms(batch.get("timeout")) and _ms(batch.get("timeout")) < 1000:
            say(f"{slug}: batch timeout must be at least 1s")
        for other in ("cancel", "debounce", "singleton"):
            if fn.get(other):
                say(f"{slug}: batching cannot be combined with {other}")
        if (fn.get("priority") or {}).get("run"):
            say(f"{slug}: batching cannot be combined with priority")
        for expr in (batch.get("key"), batch.get("if")):
            if expr:
                _cel(expr, slug, problems)
    if (fn.get("priority") or {}).get("run"):
        _cel(fn["priority"]["run"], slug, problems)
    if fn.get("idempotency"):
        _cel(fn["idempotency"], slug, problems)
    cancels = fn.get("cancel") or []
    if len(cancels) > 5:
        say(f"{slug}: at most 5 cancel entries")
    for c in cancels:
        if not c.get("event"):
            say(f"{slug}: a cancel entry needs an event")
        if c.get("if"):
            _cel(c["if"], slug, problems)
        if c.get("timeout"):
            _dur(c["timeout"], f"{slug}: cancel.timeout", problems)
    for key, value in (fn.get("timeouts") or {}).items():
        _dur(value, f"{slug}: timeouts.{key}", problems)
    single = fn.get("singleton")
    if single:
        if single.get("mode", "skip") not in ("skip", "cancel"):
            say(f"{slug}: singleton mode must be skip or cancel")
        if single.get("key"):
            _cel(single["key"], slug, problems)
    return problems


def _ms(value) -> int:
    try:
        return parse_duration_ms(value)
    except DurationError:
        return 0


def _dur(value, where: str, problems: list[str]) -> None:
    try:
        parse_duration_ms(value)
    except DurationError as exc:
        problems.append(f"{where}: {exc}")


def _cel(expr: str, slug: str, problems: list[str]) -> None:
    try:
        expressions.compile_expression(expr)
    except expressions.ExpressionError as exc:
        problems.append(f"{slug}: {exc}")


def register(engine, body: bytes) -> tuple[int, dict]:
    """Handle a registration request; returns (HTTP status, JSON reply)."""
    try:
        doc = json.loads(body)
        if not isinstance(doc, dict):
            raise ValueError("expected a JSON object")
    except ValueError as exc:
        return 400, {"error": f"Invalid request: {exc}"}
    app_name = doc.get("appname") or doc.get("appName")
    functions = doc.get("functions")
    if not app_name or not isinstance(functions, list) or not functions:
        return 400, {"error": "Invalid request: appName and at least one function are required",
                     "data": None, "status": 400}
    checksum = hashlib.sha256(body).hexdigest()
    app_id = stable_uuid("app", app_name)
    existing = engine.store.apps.get(app_name)
    if existing and existing.checksum == checksum and not existing.error \
            and not tiers.sync_problems(engine.tier, functions):   # a new plan re-checks
        return 200, {"ok": True, "modified": False, "sync_id": stable_uuid("sync", checksum),
                     "app_id": app_id}
    problems = [p for fn in functions for p in validate_function(fn)]
    problems += tiers.sync_problems(engine.tier, functions)     # lab plan limits, if any
    seen = [fn.get("id") for fn in functions]
    if len(set(seen)) != len(seen):
        problems.append("duplicate function ids in one app")
    now = engine.now()
    if problems:
        app = existing or App(name=app_name, id=app_id, url=doc.get("url", ""))
        app.error = "; ".join(problems)
        engine.store.put("app", app_name, app)
        return 400, {"error": "At least one function is invalid: " + app.error,
                     "data": None, "status": 400}
    app = App(name=app_name, id=app_id, url=doc.get("url", ""), sdk=doc.get("sdk", ""),
              framework=doc.get("framework", ""), checksum=checksum, synced_at=now)
    engine.store.put("app", app_name, app)
    new_slugs = set()
    for cfg in functions:
        slug = cfg["id"]
        new_slugs.add(slug)
        url = cfg["steps"]["step"]["runtime"]["url"]
        old = engine.store.functions.get(slug)
        fn = Function(slug=slug, id=old.id if old else stable_uuid("fn", slug), app=app_name,
                      name=cfg.get("name") or slug, url=url, config=cfg,
                      version=(old.version + 1) if old else 1,
                      created_at=old.created_at if old else now)
        engine.store.put("function", slug, fn)
    for slug, fn in list(engine.store.functions.items()):
        if fn.app == app_name and slug not in new_slugs:
            engine.store.delete("function", slug)      # archived: not in the new sync
    engine.functions_changed(app_name)
    return 200, {"ok": True, "modified": True, "sync_id": stable_uuid("sync", checksum),
                 "app_id": app_id}


async def ping_sdk(url: str, *, timeout_s: float = 10.0, server_kind: str = "dev",
                   signing_key: str | None = None) -> dict:
    """Ask the SDK at ``url`` to sync (the dev server's PUT); returns its reply."""
    body = canonical_json({"url": url})
    headers = {"content-type": "application/json", "X-Inngest-Server-Kind": server_kind}
    if signing_key:
        headers["X-Inngest-Signature"] = sign(body, signing_key)
    async with httpx.AsyncClient() as client:
        try:
            resp = await client.put(url, content=body, timeout=timeout_s, headers=headers)
        except httpx.HTTPError as exc:
            raise SyncError(f"could not reach the app at {url}: {exc!r}") from None
    if "x-inngest-sdk" not in resp.headers:
        raise SyncError(f"{url} did not answer as an Inngest SDK (HTTP {resp.status_code})")
    try:
        reply = resp.json()
    except ValueError:
        reply = {"text": resp.text}
    if resp.status_code >= 400 or (isinstance(reply, dict) and reply.get("error")):
        raise SyncError(f"sync of {url} failed: {reply.get('error') if isinstance(reply, dict) else reply}")
    return reply
