"""App sync: the SDK's ``POST /fn/register``, and the ``PUT`` ping that asks an SDK to sync.

The registration is checked in two passes before anything is stored: its shape
(``sync_schema``: every field's JSON type, with the path of a bad one), then its meaning the
way the server does (triggers, a cron that fires, CEL, durations, flow-control combinations,
limits of at least 1 and periods of at least 1 s). Every option the engine does not
implement is rejected by name, so nothing is silently ignored. A valid sync replaces the
app's function set; an invalid one stores no function (the app keeps the error, as on the
real server, when the body was well-formed).

``ping_sdk`` reads the app's answer with a size cap, checks its signature in signing-key
mode, and only reports success when the app really registered here.
"""

from __future__ import annotations

import hashlib
import time

import httpx

from . import cron, expressions, tiers
from .bodies import JSONInputError, parse_json
from .durations import DurationError, parse_duration_ms
from .ids import stable_uuid
from .limits import EXPRESSION_MAX_CHARS, SYNC_REPLY_MAX_BYTES
from .models import App, Function
from .sdk_call import canonical_json, sign, verify
from .sync_schema import function_shape_problems, shape_problems

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
    if len({canonical_json(t) for t in triggers}) != len(triggers):
        say(f"{slug}: the same trigger is listed twice")
    for trig in triggers:
        if trig.get("cron"):
            problem = (cron.validate(trig["cron"])   # robfig/cron rules, TZ= prefix included
                       or cron.jitter_problem(trig.get("jitter"))
                       or _cron_never_fires(trig["cron"]))
            if problem:
                say(f"{slug}: {problem}")
        elif trig.get("event"):
            if len(trig["event"]) > 255:
                say(f"{slug}: trigger event name longer than 255 characters")
            if trig.get("expression"):
                _cel(trig["expression"], slug, problems)
        else:
            say(f"{slug}: a trigger needs an event or a cron")
    if "step" not in (fn.get("steps") or {}):
        say(f"{slug}: steps needs its one entry named 'step'")
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
            if 0 <= _ms(spec.get("period")) < 1000 and _valid_dur(spec.get("period")):
                say(f"{slug}: {name}.period must be at least 1s, got {spec.get('period')!r}")
            if spec.get("key"):
                _cel(spec["key"], slug, problems)
    if fn.get("rateLimit") and _ms(fn["rateLimit"].get("period")) > 86_400_000:
        say(f"{slug}: rate limit period longer than 24h")
    if fn.get("throttle") and _ms(fn["throttle"].get("period")) > 7 * 86_400_000:
        say(f"{slug}: throttle period longer than 7d")
    deb = fn.get("debounce")
    if deb:
        p = _ms(deb.get("period"))
        if p and not 1000 <= p <= 7 * 86_400_000:
            say(f"{slug}: debounce period must be between 1s and 7d")
        if deb.get("timeout"):
            _positive_dur(deb["timeout"], f"{slug}: debounce.timeout", problems)
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
            _positive_dur(c["timeout"], f"{slug}: cancel.timeout", problems)
    for key, value in (fn.get("timeouts") or {}).items():
        if value is not None:
            _positive_dur(value, f"{slug}: timeouts.{key}", problems)
    single = fn.get("singleton")
    if single:
        if single.get("mode", "skip") not in ("skip", "cancel"):
            say(f"{slug}: singleton mode must be skip or cancel")
        if single.get("key"):
            _cel(single["key"], slug, problems)
    return problems


def function_problems(fn) -> list[str]:
    """Everything wrong with one function config: its shape first, then its meaning."""
    if not isinstance(fn, dict):
        return ["a function must be a JSON object"]
    return function_shape_problems(fn) or validate_function(fn)


def _cron_never_fires(expr: str) -> str | None:
    """A valid cron must also name a time that comes (``0 0 31 2 *`` never does): the
    engine schedules its next tick at every sync and start, so such a cron is refused."""
    try:
        cron.next_tick_ms(expr, int(time.time() * 1000))
    except cron.CronError as exc:
        return f"cron {expr!r} never fires (no date matches it: {exc})"
    return None


def _valid_dur(value) -> bool:
    try:
        parse_duration_ms(value)
        return True
    except DurationError:
        return False


def _positive_dur(value, where: str, problems: list[str]) -> None:
    try:
        if parse_duration_ms(value) <= 0:
            problems.append(f"{where}: must be longer than 0s, got {value!r}")
    except DurationError as exc:
        problems.append(f"{where}: {exc}")


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
    if len(expr) > EXPRESSION_MAX_CHARS:
        problems.append(f"{slug}: expression longer than {EXPRESSION_MAX_CHARS} characters")
        return
    try:
        expressions.compile_expression(expr)
    except expressions.ExpressionError as exc:
        problems.append(f"{slug}: {exc}")


def register(engine, body: bytes) -> tuple[int, dict]:
    """Handle a registration request; returns (HTTP status, JSON reply)."""
    try:
        doc = parse_json(body)
        if not isinstance(doc, dict):
            raise JSONInputError("expected a JSON object")
    except JSONInputError as exc:
        return 400, {"error": f"Invalid request: {exc}", "data": None, "status": 400}
    shape = shape_problems(doc)
    if shape:
        return 400, {"error": "Invalid request: " + "; ".join(shape), "data": None,
                     "status": 400}
    app_name = doc.get("appname") or doc.get("appName")
    functions = doc.get("functions")
    if not app_name or not functions:
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
    """Ask the SDK at ``url`` to sync (the dev server's PUT); returns its reply.

    The answer is read up to ``SYNC_REPLY_MAX_BYTES`` and, with a signing key, must carry
    a valid ``X-Inngest-Signature`` (the SDK signs its answers in production mode).
    """
    body = canonical_json({"url": url})
    headers = {"content-type": "application/json", "X-Inngest-Server-Kind": server_kind}
    if signing_key:
        headers["X-Inngest-Signature"] = sign(body, signing_key)
    async with httpx.AsyncClient() as client:
        try:
            async with client.stream("PUT", url, content=body, timeout=timeout_s,
                                     headers=headers) as resp:
                raw = await _read_capped(resp, url)
        except httpx.HTTPError as exc:
            raise SyncError(f"could not reach the app at {url}: {exc!r}") from None
    if "x-inngest-sdk" not in resp.headers:
        raise SyncError(f"{url} did not answer as an Inngest SDK (HTTP {resp.status_code})")
    if signing_key and not verify(raw, resp.headers.get("x-inngest-signature"), signing_key):
        raise SyncError(f"the answer of {url} is not signed with this engine's signing key "
                        "(X-Inngest-Signature missing or wrong)")
    try:
        reply = parse_json(raw)
    except JSONInputError:
        reply = {"text": raw[:500].decode("utf-8", "replace")}
    if resp.status_code >= 400 or (isinstance(reply, dict) and reply.get("error")):
        detail = reply.get("error") or reply.get("message") if isinstance(reply, dict) else reply
        raise SyncError(f"sync of {url} failed: {detail}")
    return reply


async def _read_capped(resp: httpx.Response, url: str) -> bytes:
    declared = resp.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > SYNC_REPLY_MAX_BYTES:
        raise SyncError(f"the answer of {url} is {declared} bytes, over the limit of "
                        f"{SYNC_REPLY_MAX_BYTES}")
    raw = bytearray()
    async for chunk in resp.aiter_bytes():
        raw.extend(chunk)
        if len(raw) > SYNC_REPLY_MAX_BYTES:
            raise SyncError(f"the answer of {url} is over the limit of {SYNC_REPLY_MAX_BYTES} "
                            "bytes; the engine stopped reading it")
    return bytes(raw)


async def sync_app(engine, url: str) -> dict:
    """Ping the app at ``url`` and confirm that it registered with *this* engine.

    The SDK answers the PUT with the registration server's reply; an app pointed at another
    server (``INNGEST_DEV``, ``api_base_url``) answers "ok" for a sync that never came here.
    """
    reply = await ping_sdk(url, server_kind=engine.server_kind, signing_key=engine.signing_key)
    app_id = reply.get("app_id") if isinstance(reply, dict) else None
    app = next((a for a in engine.store.apps.values() if a.id == app_id), None)
    if not isinstance(reply, dict) or reply.get("ok") is not True or app is None:
        raise SyncError(f"{url} answered the sync, but no app registered with this engine "
                        f"(its answer: {str(reply)[:300]}). Does its INNGEST_DEV / "
                        "api_base_url point at another server?")
    if app.error:
        raise SyncError(f"sync of {url} failed: {app.error}")
    return reply
