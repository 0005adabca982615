"""M12: the Worker's one clock seam. With ``WORKER_CLOCK_URL`` pointing at the engine's clock,
the store's "now" is the engine's (virtual) time: advancing a week ages customers, shifts the
activity window and dates audit rows; without it, the wall clock."""

from __future__ import annotations

import datetime as dt

import pytest

from customer_data_mcp import clock, migrate, store
from worker_helpers import engine_json, query

# The Worker fixtures (worker_db, envelope, ...) with one Postgres for the whole session.
pytest_plugins = ["worker_helpers"]


def _engine_now(engine) -> dt.datetime:
    body = engine_json(engine.url, "GET", "/lab/v1/clock")
    return dt.datetime.fromtimestamp(body["now_ms"] / 1000, dt.timezone.utc)


@pytest.fixture
def engine_clock(engine, monkeypatch):
    monkeypatch.setenv(clock.CLOCK_URL_ENV, engine.url + "/lab/v1/clock")
    return engine


def _advance(engine, seconds: float) -> None:
    engine_json(engine.url, "POST", "/lab/v1/clock/advance", json={"seconds": seconds})


def test_now_is_the_wall_clock_unless_a_clock_url_is_set(monkeypatch):
    monkeypatch.delenv(clock.CLOCK_URL_ENV, raising=False)
    before = dt.datetime.now(dt.timezone.utc)
    assert before <= clock.now() <= dt.datetime.now(dt.timezone.utc)
    monkeypatch.setenv(clock.CLOCK_URL_ENV, "http://127.0.0.1:9/lab/v1/clock")
    with pytest.raises(clock.ClockUnavailable, match="WORKER_CLOCK_URL"):
        clock.now()


def test_now_follows_the_engine_clock_at_call_time(engine_clock):
    first = clock.now()
    assert abs((first - _engine_now(engine_clock)).total_seconds()) < 5
    _advance(engine_clock, 3 * 86400)
    assert (clock.now() - first).total_seconds() >= 3 * 86400


def test_advancing_a_week_ages_customers_activity_and_audit_rows(worker_db, engine_clock,
                                                                 engine):
    migrate.reset(worker_db)  # seed relative to the engine's now
    eligible = {c["id"] for c in store.list_customers(["pro", "enterprise"], 7)}
    assert {"c-test-1", "c-test-5"} <= eligible  # never contacted; contacted 8 days ago
    store.mark_outreach("c-test-1")
    assert "c-test-1" not in {c["id"] for c in store.list_customers(["pro"], 7)}
    assert store.recent_activity("c-test-1", 30)["conversations"]  # updated 3 days ago

    _advance(engine, 8 * 86400)  # a week and a day of engine time; no wall time passes
    assert "c-test-1" in {c["id"] for c in store.list_customers(["pro"], 7)}
    assert not store.recent_activity("c-test-1", 5)["conversations"]  # now 11 days old
    row = store.record_audit("clock_checked", "c-test-1")
    stamped = dt.datetime.fromisoformat(row["created_at"])
    wall = dt.datetime.now(dt.timezone.utc)
    assert (stamped - wall).total_seconds() > 7 * 86400  # dated on the engine's clock
    assert abs((stamped - _engine_now(engine)).total_seconds()) < 5
    marked = query(worker_db, "SELECT last_proactive_outreach AS at FROM customers"
                              " WHERE id = 'c-test-1'")[0]["at"]
    assert (_engine_now(engine) - marked).total_seconds() >= 8 * 86400
