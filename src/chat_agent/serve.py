"""The function host: a FastAPI app serving the Worker's Inngest functions.

    uvicorn chat_agent.serve:app --port 8000      # then sync http://127.0.0.1:8000/api/inngest

Also serves ``POST /webhooks/postmark`` (the Postmark inbound transform of ``postmark.py``,
then one event send whose id is the email's MessageID) and
``POST /admin/escalations/{request_id}/decision`` (the reviewer's buttons: one
``escalation/decision.made`` event per request). Both refuse requests ``http_guard`` refuses
(a foreign Origin, an untrusted Host, a body over 1 MiB or JSON nested over 32 deep) and answer
503 with the reason when the engine cannot be reached, so nothing is half-done.

The functions are served at ``/api/inngest`` for the engine the client names *when a request
arrives* (``EngineBoundServe``): the SDK fixes its registration URL when ``serve`` is called,
and a notebook builds this app before ``lab.start`` has picked an engine. ``app.state`` tells a
host what is served (``inngest_client``, ``inngest_functions``, ``inngest_serve_path``).
"""

from __future__ import annotations

import contextlib
import os

import anyio.to_thread
import inngest
import inngest.fast_api
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
# What client.send raises when the engine never answers or refuses; inngest-py 0.5 does not
# export it from the package root.
from inngest._internal.errors import SendEventsError

from customer_data_mcp import clock, db, migrate, store

from .envelope_steps import DECISIONS, SAFE_ID
from .http_guard import LOOPBACK_HOSTS, Refused, check_headers, parse_json, read_body
from .inngest_client import inngest_client
from .postmark import PostmarkPayloadError, postmark_to_event
from .tasks import functions

SERVE_PATH = "/api/inngest"


def decision_event(request_id: str, body) -> dict:
    """The ``escalation/decision.made`` event for a reviewer's click, id
    ``decision-<request_id>``. The gate takes the first decision for a request; a double click
    or a second reviewer arriving later changes nothing."""
    if not SAFE_ID.match(request_id):
        raise ValueError(f"request_id must match {SAFE_ID.pattern}")
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    for key in ("reviewer", "edited_text"):
        if isinstance(body.get(key), str) and "\x00" in body[key]:
            raise ValueError(f"{key} contains a NUL byte")
    decision, reviewer = body.get("decision"), body.get("reviewer")
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {list(DECISIONS)}")
    if not isinstance(reviewer, str) or not reviewer.strip():
        raise ValueError("reviewer (who decided) is required")
    data = {"request_id": request_id, "decision": decision, "reviewer": reviewer.strip()}
    if decision == "edit":
        edited = body.get("edited_text")
        if not isinstance(edited, str) or not edited.strip():
            raise ValueError("an 'edit' decision needs edited_text")
        data["edited_text"] = edited
    return {"name": "escalation/decision.made", "id": f"decision-{request_id}", "data": data}


def prepare_database() -> None:
    """Migrate; seed only the embedded lab database (never a DATABASE_URL you pointed us at)."""
    migrate.migrate()
    if not os.environ.get("DATABASE_URL") and migrate.counts()["customers"] == 0:
        migrate.seed()


@contextlib.asynccontextmanager
async def _prepare_on_startup(_app: FastAPI):
    await anyio.to_thread.run_sync(prepare_database)
    yield
    # uvicorn re-raises SIGTERM after shutting down, so atexit hooks may never run: stop the
    # embedded Postgres we started here (a no-op with DATABASE_URL or when others use it).
    await anyio.to_thread.run_sync(db.stop_embedded)


class EngineBoundServe:
    """ASGI middleware: requests to ``serve_path`` go to an SDK app built for the engine URL
    the client names now (one per URL, kept), everything else to the wrapped app."""

    def __init__(self, app, client: inngest.Inngest, functions: list, serve_path: str) -> None:
        self.app, self.client, self.functions, self.serve_path = app, client, functions, serve_path
        self._sdk_apps: dict[str, FastAPI] = {}

    def _sdk_app(self) -> FastAPI:
        origin = self.client.api_origin
        if origin not in self._sdk_apps:
            sdk_app = FastAPI(title=f"inngest functions for {origin}")
            inngest.fast_api.serve(sdk_app, self.client, self.functions,
                                   serve_path=self.serve_path)
            self._sdk_apps[origin] = sdk_app
        return self._sdk_apps[origin]

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"].rstrip("/") == self.serve_path:
            await self._sdk_app()(scope, receive, send)
        else:
            await self.app(scope, receive, send)


async def _send(client: inngest.Inngest, event: dict) -> list[str]:
    """Send one event; ``Refused`` 503 when the engine cannot be reached, 502 when it refuses."""
    try:
        return await client.send(inngest.Event(**event))
    except SendEventsError as exc:
        if not exc.ids and "never received" in str(exc):
            raise Refused(503, f"the Inngest engine at {client.event_api_origin} did not "
                               f"answer, so the event was not sent ({exc}); retry later") from exc
        raise Refused(502, f"the Inngest engine refused the event: {exc}") from exc
    except (OSError, ValueError) as exc:  # a non-JSON answer, a broken connection
        raise Refused(503, f"the Inngest engine at {client.event_api_origin} could not take "
                           f"the event ({type(exc).__name__}: {exc}); retry later") from exc


def _refusal(exc: Refused) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, status_code=exc.status)


def create_app(client: inngest.Inngest | None = None, *, prepare_db: bool = False,
               trusted_hosts=LOOPBACK_HOSTS) -> FastAPI:
    """The host app. ``prepare_db`` migrates (and seeds the embedded DB) when the server
    starts, not at import, so importing this module never starts a database.
    ``trusted_hosts``: the Host names the webhook and reviewer routes answer (loopback by
    default; add your public name when deploying behind one)."""
    client = client or inngest_client
    app = FastAPI(title="chat-agent worker", lifespan=_prepare_on_startup if prepare_db else None)
    app.add_middleware(EngineBoundServe, client=client, functions=functions,
                       serve_path=SERVE_PATH)
    app.state.inngest_client = client
    app.state.inngest_functions = list(functions)
    app.state.inngest_serve_path = SERVE_PATH

    @app.post("/webhooks/postmark")
    async def postmark_webhook(request: Request):
        try:
            check_headers(request.headers, trusted_hosts)
            payload = parse_json(await read_body(request))
            try:
                event = await anyio.to_thread.run_sync(
                    lambda: postmark_to_event(payload, store.find_customer_by_email))
            except PostmarkPayloadError as exc:
                raise Refused(400, str(exc)) from exc
            except (store.CustomerNotFound, store.InvalidInput) as exc:
                raise Refused(422, str(exc)) from exc
            except (db.DatabaseError, clock.ClockUnavailable) as exc:
                raise Refused(503, f"the customer lookup is unavailable: {exc}") from exc
            ids = await _send(client, event)
        except Refused as exc:
            return _refusal(exc)
        return {"event_id": event["id"], "internal_ids": ids, "customer_id":
                event["data"]["customer_id"]}

    @app.post("/admin/escalations/{request_id}/decision")
    async def escalation_decision(request_id: str, request: Request):
        """What the reviewer's Approve / Edit / Reject buttons call."""
        try:
            check_headers(request.headers, trusted_hosts)
            body = parse_json(await read_body(request))
            try:
                event = decision_event(request_id, body)
            except ValueError as exc:
                raise Refused(400, str(exc)) from exc
            ids = await _send(client, event)
        except Refused as exc:
            return _refusal(exc)
        return {"event_id": event["id"], "internal_ids": ids}

    @app.get("/healthz")
    async def healthz():
        return {"ok": True, "functions": [f.id for f in functions]}

    return app


app = create_app(prepare_db=os.environ.get("CHAT_AGENT_SKIP_DB") != "1")
