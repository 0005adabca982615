"""The engine's HTTP surface, assembled: event API, sync, dev info, REST, GraphQL, lab API,
dashboard and MCP. One asyncio loop runs both the HTTP server and the scheduler."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from . import VERSION, rest, lab_api, sync
from .engine import Engine
from .events import EventInputError, parse_events
from .ids import ulid_from_seed
from .sdk_call import hashed_signing_key

log = logging.getLogger("lab_support.devserver")
DASHBOARD = Path(__file__).with_name("dashboard")


def create_app(engine: Engine, *, start_opts: dict | None = None,
               sdk_urls: tuple[str, ...] = ()) -> FastAPI:
    mcp_server = _load_mcp(start_opts or {})

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
                  docs_url="/lab/docs", openapi_url="/lab/openapi.json", redoc_url=None)
    app.state.engine = engine
    app.state.start_opts = start_opts or {}

    @app.middleware("http")
    async def server_kind(request: Request, call_next):
        response = await call_next(request)
        response.headers["X-Inngest-Server-Kind"] = engine.server_kind
        return response

    @app.post("/e/{key}")
    async def ingest(key: str, request: Request):
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
    def dev_info():
        return {"version": f"dev-{VERSION}", "engine": "embedded", "engine_version": VERSION,
                "authed": False, "startOpts": app.state.start_opts,
                "functions": [f.config for f in engine.store.functions.values()],
                "handlers": None, "isSingleNodeService": True, "isMissingSigningKey": False,
                "isMissingEventKeys": False, "clock": engine.clock.mode,
                "features": {"virtualClock": engine.clock.mode == "virtual", "chaos": True,
                             "bulkCancel": True}}

    @app.get("/health")
    def health():
        return {"status": 200, "message": "OK"}

    app.include_router(rest.router)
    app.include_router(lab_api.router)
    _mount_graphql(app, engine)
    if mcp_server is not None:
        app.mount("/mcp", mcp_server.streamable_http_app())

    @app.get("/")
    def dashboard_index():
        index = DASHBOARD / "index.html"
        if not index.exists():
            return JSONResponse({"message": "dashboard not built into this engine"})
        return FileResponse(index)

    @app.get("/dashboard/{name}")
    def dashboard_file(name: str):
        path = (DASHBOARD / name).resolve()
        if path.parent != DASHBOARD.resolve() or not path.is_file():
            return Response(status_code=404)
        return FileResponse(path)

    return app


async def _sync_at_start(engine: Engine, urls: tuple[str, ...], attempts: int = 60) -> None:
    """Ping each ``-u`` app until it syncs (it may start after the engine), 1 s apart."""
    pending = list(urls)
    for _ in range(attempts):
        for url in list(pending):
            try:
                await sync.ping_sdk(url, server_kind=engine.server_kind,
                                    signing_key=engine.signing_key)
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


def _load_mcp(start_opts: dict):
    if os.environ.get("LAB_ENGINE_NO_MCP"):
        return None
    try:
        from .mcp_tools import create_mcp_server
    except ImportError:
        return None
    base = f"http://{start_opts.get('host', '127.0.0.1')}:{start_opts.get('port', 8288)}"
    return create_mcp_server(base)
