"""Fixtures for the Worker tests: one embedded Postgres per test session, a fresh seeded
database per test module (``DATABASE_URL`` points at it while the module runs), and the
Worker's functions served to an embedded engine.

Test modules load it with ``pytest_plugins = ["worker_helpers"]`` (so the session fixture is
shared) and also import helpers from it, hence PYTEST_DONT_REWRITE: it is imported before
pytest could rewrite its asserts, and it raises its own messages anyway."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid

import httpx
import psycopg
import pytest

from customer_data_mcp import db, migrate
from engine_helpers import wait_for


@pytest.fixture(scope="session")
def pg_server():
    """The session's embedded Postgres (a temp data dir, removed afterwards)."""
    pgdata = tempfile.mkdtemp(prefix="worker-pg-")
    server = db.start_embedded(pgdata)
    try:
        yield server
    finally:
        db.stop_embedded(pgdata)
        shutil.rmtree(pgdata, ignore_errors=True)


def _create_database(server) -> tuple[str, str]:
    name = "w_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, server.get_uri(name)


def _drop_database(server, name: str) -> None:
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def worker_db(pg_server):
    """A freshly migrated and seeded database for this test module; yields its URL."""
    name, url = _create_database(pg_server)
    previous = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = url
    try:
        migrate.seed(url)
        yield url
    finally:
        if previous is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = previous
        _drop_database(pg_server, name)


def query(url: str, sql: str, params=()) -> list[dict]:
    with db.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def wait_until(predicate, *, timeout: float, interval: float = 0.2, message: str):
    """Poll ``predicate`` until it returns something truthy; fail with ``message``."""
    return wait_for(predicate, timeout, message, interval=interval)


def engine_json(engine_url: str, method: str, path: str, **kwargs):
    response = httpx.request(method, engine_url + path, timeout=15, **kwargs)
    response.raise_for_status()
    return response.json()


# ---------------------------------------------------------------- the Inngest envelope

TERMINAL = ("Completed", "Failed", "Cancelled")
RUN_TIMEOUT_S = 180


class WorkerEnvelope:
    """The Worker's functions served in this process and synced to an embedded engine."""

    def __init__(self, engine) -> None:
        from chat_agent.inngest_client import make_client
        from chat_agent.serve import create_app
        from lab_support.host import ThreadedHost

        self.engine = engine
        self.client = make_client(engine.url)
        self.host = ThreadedHost(create_app(self.client)).start()
        try:
            engine_json(engine.url, "POST", "/lab/v1/sync",
                        json={"url": self.host.url + "/api/inngest"})
        except Exception:
            self.host.stop()
            raise

    def stop(self) -> None:
        self.host.stop()

    def send(self, name: str, data: dict, event_id: str) -> str:
        import inngest

        return self.client.send_sync(inngest.Event(name=name, id=event_id, data=data))[0]

    def runs_of_event(self, internal_id: str) -> list[dict]:
        return engine_json(self.engine.url, "GET", f"/v1/events/{internal_id}/runs")["data"]

    def run(self, run_id: str) -> dict:
        return engine_json(self.engine.url, "GET", f"/v1/runs/{run_id}")["data"]

    def wait_event_run(self, internal_id: str, timeout: float = RUN_TIMEOUT_S) -> dict:
        """The (single) run the event started, once it has finished."""
        def done():
            runs = self.runs_of_event(internal_id)
            return runs[0] if runs and runs[0]["status"] in TERMINAL else None
        run = wait_until(done, timeout=timeout, message=f"run of event {internal_id} to end")
        return self.run(run["run_id"])

    def wait_run(self, run_id: str, timeout: float = RUN_TIMEOUT_S) -> dict:
        return wait_until(lambda: (r := self.run(run_id))["status"] in TERMINAL and r,
                          timeout=timeout, message=f"run {run_id} to end")

    def lab_runs(self, function: str) -> list[dict]:
        return engine_json(self.engine.url, "GET", "/lab/v1/runs",
                           params={"function": function})["data"]

    def gql(self, query: str, **variables) -> dict:
        answer = engine_json(self.engine.url, "POST", "/v0/gql",
                             json={"query": query, "variables": variables})
        assert not answer.get("errors"), answer["errors"]
        return answer["data"]

    def trace(self, run_id: str) -> list[dict]:
        """The run's step spans (first occurrence of each name)."""
        data = self.gql("query($id:String!){ runTrace(runID:$id){ childrenSpans{ name status "
                        "stepID stepOp memoized attempts } } }", id=run_id)
        seen, spans = set(), []
        for span in data["runTrace"]["childrenSpans"]:
            if span["name"] not in seen:
                seen.add(span["name"])
                spans.append(span)
        return spans


@pytest.fixture(scope="module")
def envelope(engine, worker_db):
    env = WorkerEnvelope(engine)
    try:
        yield env
    finally:
        env.stop()
