"""The function host of your Worker (given: the notebooks write it, you need not change it).

A FastAPI app that serves the Inngest functions of the parts you have built, plus their HTTP
routes (the Postmark webhook of Decision 4, the reviewer's buttons of Decision 7). Outside a
notebook, from the workspace folder:

    INNGEST_DEV=http://127.0.0.1:8288 uvicorn my_worker.serve:create_app --factory --port 8000

then sync http://127.0.0.1:8000/api/inngest with the dev server. A part is a module of this
package with a list ``functions`` and, optionally, a FastAPI ``router``.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import inngest.fast_api
from fastapi import FastAPI

from .inngest_client import inngest_client

# In the order the Decisions add them: 3, 4, 5, 7.
PARTS = ("email_tasks", "webhook", "health_tasks", "escalation_tasks")


def written_parts() -> list[str]:
    here = Path(__file__).resolve().parent
    return [name for name in PARTS if (here / f"{name}.py").exists()]


def create_app(parts: list[str] | None = None) -> FastAPI:
    """The host for ``parts`` (default: every part written so far)."""
    app = FastAPI(title=f"{inngest_client.app_id} function host")
    functions = []
    for name in written_parts() if parts is None else parts:
        part = importlib.import_module(f"{__package__}.{name}")
        functions.extend(getattr(part, "functions", []))
        if getattr(part, "router", None) is not None:
            app.include_router(part.router)
    inngest.fast_api.serve(app, inngest_client, functions)
    app.state.inngest_client = inngest_client
    app.state.inngest_functions = functions
    return app
