"""The function host: a FastAPI app serving the Worker's Inngest functions.

    uvicorn chat_agent.serve:app --port 8000      # then sync http://127.0.0.1:8000/api/inngest

Also serves ``POST /webhooks/postmark`` (the Postmark inbound transform of ``postmark.py``,
then one event send whose id is the email's MessageID) and
``POST /admin/escalations/{request_id}/decision`` (the reviewer's buttons: one
``escalation/decision.made`` event per request).
"""

from __future__ import annotations

import contextlib
import json
import os

import anyio.to_thread
import inngest
import inngest.fast_api
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from customer_data_mcp import db, migrate, store

from .envelope_steps import DECISIONS, SAFE_ID
from .inngest_client import inngest_client
from .postmark import PostmarkPayloadError, postmark_to_event
from .tasks import functions


def decision_event(request_id: str, body) -> dict:
    """The ``escalation/decision.made`` event for a reviewer's click, id
    ``decision-<request_id>``. The gate takes the first decision for a request; a double click
    or a second reviewer arriving later changes nothing."""
    if not SAFE_ID.match(request_id):
        raise ValueError(f"request_id must match {SAFE_ID.pattern}")
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
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


def create_app(client: inngest.Inngest | None = None, *, prepare_db: bool = False) -> FastAPI:
    """The host app. ``prepare_db`` migrates (and seeds the embedded DB) when the server
    starts, not at import, so importing this module never starts a database."""
    client = client or inngest_client
    app = FastAPI(title="chat-agent worker", lifespan=_prepare_on_startup if prepare_db else None)
    inngest.fast_api.serve(app, client, functions)

    @app.post("/webhooks/postmark")
    async def postmark_webhook(request: Request):
        raw = await request.body()
        try:
            payload = json.loads(raw)
        except ValueError as exc:
            return JSONResponse({"error": f"body is not JSON: {exc}"}, status_code=400)
        try:
            event = await anyio.to_thread.run_sync(
                lambda: postmark_to_event(payload, store.find_customer_by_email))
        except PostmarkPayloadError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        except (store.CustomerNotFound, store.InvalidInput) as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        ids = await client.send(inngest.Event(**event))
        return {"event_id": event["id"], "internal_ids": ids, "customer_id":
                event["data"]["customer_id"]}

    @app.post("/admin/escalations/{request_id}/decision")
    async def escalation_decision(request_id: str, request: Request):
        """What the reviewer's Approve / Edit / Reject buttons call."""
        try:
            body = json.loads(await request.body())
        except ValueError as exc:
            return JSONResponse({"error": f"body is not JSON: {exc}"}, status_code=400)
        try:
            event = decision_event(request_id, body)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        ids = await client.send(inngest.Event(**event))
        return {"event_id": event["id"], "internal_ids": ids}

    @app.get("/healthz")
    async def healthz():
        return {"ok": True, "functions": [f.id for f in functions]}

    return app


app = create_app(prepare_db=os.environ.get("CHAT_AGENT_SKIP_DB") != "1")
