"""The engine's HTTP surface, assembled: event API, sync, dev info, REST, GraphQL, lab API,
dashboard and MCP. One asyncio loop runs both the HTTP server and the scheduler, and every
handler runs on it (``async def``: none in a thread next to the scheduler).

In front of every route: ``guard.RequestGuard`` (Host and Origin) and ``bodies.BodyLimit``
(a size cap per route). ``POST /e/{key}`` checks the event key when one is configured,
validates the whole request, and answers 200 only once the events and the runs they started
are committed to SQLite (``Store.durable``, a group commit). No page loads a script from
elsewhere: the Swagger UI and the GraphQL explorer are off (they come from public CDNs);
the schemas are at ``/lab/openapi.json`` and in ``schema.graphql``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse

from . import VERSION, rest, lab_api, sync
from .bodies import BodyLimit
from .engine import Engine
from .events import EventInputError, parse_events
from .guard import RequestGuard, security_settings
from .ids import ulid_from_seed
from .sdk_call import hashed_signing_key

log = logging.getLogger("lab_support.devserver")
DASHBOARD = Path(__file__).with_name("dashboard")


def create_app(engine: Engine, *, start_opts: dict | None = None,
               sdk_urls: tuple[str, ...] = (), event_key: str | None = None,
               allow_hosts: tuple[str, ...] = (),
               allow_origins: tuple[str, ...] = ()) -> FastAPI:
    opts = start_opts or {}
    security = security_settings(opts.get("host", "127.0.0.1"), allow_hosts, allow_origins)
    mcp_server = _load_mcp(opts, event_key)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        await engine.start()
        async with contextlib.AsyncExitStack() as stack:
            if mcp_server is not None:
                await stack.enter_async_context(mcp_server.session_manager.run())
            # After startup, not during it: the SDK answers the ping by registering with us.
            syncing = asyncio.create_task(_sync_at_start(engine, sdk_urls))
            yield
            syncing.cancel()
        await engine.stop()

    app = FastAPI(title="Production Worker Lab engine", version=VERSION, lifespan=lifespan,
                  docs_url=None, openapi_url="/lab/openapi.json", redoc_url=None)
    app.state.engine = engine
    app.state.start_opts = opts
    app.state.event_key = event_key
    # Outermost first: the Host/Origin guard, then the body cap, then the routes.
    app.add_middleware(BodyLimit)
    app.add_middleware(RequestGuard, settings=security)

    @app.middleware("http")
    async def server_kind(request: Request, call_next):
        response = await call_next(request)
        response.headers["X-Inngest-Server-Kind"] = engine.server_kind
        return response

    @app.post("/e/{key}")
    async def ingest(key: str, request: Request):
        if event_key and key != event_key:
            return JSONResponse({"ids": [], "status": 401, "error": "Event key not found"},
                                status_code=401)
        body = await request.body()
        try:
            events = parse_events(body)
        except EventInputError as exc:
            return JSONResponse({"ids": [], "status": 400, "error": str(exc)}, status_code=400)
        if not events:
            return JSONResponse({"ids": [""], "status": 200})
        seed = request.headers.get("x-inngest-event-id-seed")
        seeded = [ulid_from_seed(seed, n + 1) for n in range(len(events))]
        ids = engine.accept(events, internal_ids=seeded)
        try:
            await engine.store.durable()        # acknowledge only what a crash cannot lose
        except Exception as exc:  # noqa: BLE001 - a full disk, say: tell the sender
            log.exception("could not persist accepted events")
            return JSONResponse({"ids": ids, "status": 503,
                                 "error": f"the engine could not write its state ({exc}); "
                                          "the events were not acknowledged"},
                                status_code=503)
        return JSONResponse({"ids": ids, "status": 200})

    @app.post("/fn/register")
    async def register(request: Request):
        if engine.signing_key:
            expected = "Bearer " + hashed_signing_key(engine.signing_key)
            if request.headers.get("authorization") != expected:
                return JSONResponse({"error": "unauthorized: bad or missing signing key"},
                                    status_code=401)
        kind = request.headers.get("x-inngest-expected-server-kind")
        if kind and kind != engine.server_kind:
            return JSONResponse({"error": f"Expected server kind {engine.server_kind}, "
                                          f"got {kind}"}, status_code=400)
        status, reply = sync.register(engine, await request.body())
        return JSONResponse(reply, status_code=status)

    @app.get("/dev")
    async def dev_info():
        return {"version": f"dev-{VERSION}", "engine": "embedded", "engine_version": VERSION,
                "authed": False, "startOpts": app.state.start_opts,
                "functions": [f.config for f in engine.store.functions.values()],
                "handlers": None, "isSingleNodeService": True, "isMissingSigningKey": False,
                "isMissingEventKeys": False, "clock": engine.clock.mode,
                "eventKeyRequired": bool(event_key),
                "features": {"virtualClock": engine.clock.mode == "virtual", "chaos": True,
                             "bulkCancel": True}}

    @app.get("/health")
    async def health():
        return {"status": 200, "message": "OK"}

    app.include_router(rest.router)
    app.include_router(lab_api.router)
    _mount_graphql(app, engine)
    if mcp_server is not None:
        app.mount("/mcp", mcp_server.streamable_http_app(transport_security=security))

    @app.get("/")
    async def dashboard_index():
        index = DASHBOARD / "index.html"
        if not index.exists():
            return JSONResponse({"message": "dashboard not built into this engine"})
        return FileResponse(index)

    @app.get("/dashboard/{name}")
    async def dashboard_file(name: str):
        try:
            path = (DASHBOARD / name).resolve()
            found = path.parent == DASHBOARD.resolve() and path.is_file()
        except (OSError, ValueError):       # a NUL byte, a name too long for the OS
            found = False
        if not found:
            return JSONResponse({"error": f"no dashboard file {name[:100]!r}"}, status_code=404)
        return FileResponse(path)

    return app


async def _sync_at_start(engine: Engine, urls: tuple[str, ...], attempts: int = 60) -> None:
    """Ping each ``-u`` app until it syncs (it may start after the engine), 1 s apart."""
    pending = list(urls)
    for _ in range(attempts):
        for url in list(pending):
            try:
                await sync.sync_app(engine, url)
                pending.remove(url)
            except sync.SyncError as exc:
                log.info("sync of %s not done yet: %s", url, exc)
        if not pending:
            return
        await asyncio.sleep(1.0)
    for url in pending:
        log.warning("gave up syncing %s after %d attempts", url, attempts)


def _mount_graphql(app: FastAPI, engine: Engine) -> None:
    from starlette.routing import Route

    from .graphql_api import graphql_app
    # A Route, not a Mount: the SDKs and the dashboard POST to /v0/gql with no trailing slash.
    app.router.routes.append(Route("/v0/gql", graphql_app(engine), methods=["GET", "POST"]))


def _load_mcp(start_opts: dict, event_key: str | None = None):
    if os.environ.get("LAB_ENGINE_NO_MCP"):
        return None
    try:
        from .mcp_tools import create_mcp_server
    except ImportError:
        return None
    host = start_opts.get("host", "127.0.0.1")
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"                  # the tools call the engine over loopback
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    base = f"http://{host}:{start_opts.get('port', 8288)}"
    return create_mcp_server(base, event_key=event_key)
