"""Fixtures for the Worker tests: one embedded Postgres per test session, a fresh seeded
database per test module (``DATABASE_URL`` points at it while the module runs)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid

import httpx
import psycopg
import pytest

from customer_data_mcp import db, migrate


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
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{message} (waited {timeout:.0f} s; last value: {last!r})")


def engine_json(engine_url: str, method: str, path: str, **kwargs):
    response = httpx.request(method, engine_url + path, timeout=15, **kwargs)
    response.raise_for_status()
    return response.json()
