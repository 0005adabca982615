"""``lab.wait`` on what a real dev server does differently: GraphQL that lags REST, and
duplicate event ids whose one run may belong to either copy."""

from __future__ import annotations

import json

import httpx
import lab_helpers as h
import pytest

from lab_support import client as client_mod
from lab_support import waiting
from lab_support.client import EngineClient, RunNotFound
from lab_support.lab_object import Lab

pytestmark = pytest.mark.timeout(240)

RUN = {"id": "01RUN", "status": "COMPLETED", "queuedAt": None, "startedAt": None,
       "endedAt": None, "output": "null", "triggerIDs": [], "eventName": "a",
       "function": {"slug": "app-a", "name": "a"}}


def lagging(misses: int, message: str = "error retrieving run: sql: no rows in result set"):
    """A server whose GraphQL does not know the run for its first ``misses`` answers."""
    calls = {"run": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/dev":
            return httpx.Response(200, json={"engine": "embedded"})
        if request.url.path == "/v0/gql" and "run(runID" in json.loads(request.content)["query"]:
            calls["run"] += 1
            if calls["run"] <= misses:
                return httpx.Response(200, json={"errors": [{"message": message}],
                                                 "data": None})
            return httpx.Response(200, json={"data": {"run": RUN}})
        return httpx.Response(404, text="nope")

    return EngineClient("http://engine", transport=httpx.MockTransport(handler)), calls


def test_graphql_not_found_yet_is_polled_until_the_row_exists():
    api, calls = lagging(misses=3)
    assert api.run("01RUN")["status"] == "COMPLETED"
    assert calls["run"] == 4


def test_the_embedded_engines_wording_is_polled_too():
    api, calls = lagging(misses=2, message="run 01RUN not found")
    assert api.run("01RUN")["id"] == "01RUN" and calls["run"] == 3


def test_a_run_that_never_appears_is_reported_after_the_bounded_wait():
    api, calls = lagging(misses=10_000)
    with pytest.raises(RunNotFound, match="sql: no rows|No run with id"):
        api.run("01RUN", wait=0.3)
    assert calls["run"] >= 2
    with pytest.raises(RunNotFound):
        api.run("01RUN", wait=0)  # asked once


def test_other_graphql_errors_are_not_retried():
    api, calls = lagging(misses=10_000, message="Cannot query field 'nope'")
    with pytest.raises(client_mod.LabClientError, match="Cannot query") as err:
        api.run("01RUN")
    assert not isinstance(err.value, RunNotFound) and calls["run"] == 1


def test_a_real_servers_output_is_read_again_until_it_is_stored():
    """A real server marks the run COMPLETED a moment before its output is stored."""
    reads = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/dev":
            return httpx.Response(200, json={"version": "1.x"})  # no "engine": a real server
        reads["n"] += 1
        output = None if reads["n"] <= 2 else '"Draft for c-1"'
        return httpx.Response(200, json={"data": {"run": dict(RUN, output=output)}})

    api = EngineClient("http://engine", transport=httpx.MockTransport(handler))
    assert api.run("01RUN")["output"] == '"Draft for c-1"' and reads["n"] == 3


@pytest.fixture(scope="module")
def lab(engine):
    the_lab = Lab()
    the_lab.start(h.FUNCTIONS, engine=engine.url, quiet=True)
    try:
        yield the_lab
    finally:
        the_lab.stop()


def test_a_duplicate_id_resolves_to_the_run_it_produced_without_a_stall(lab, tmp_path,
                                                                        capsys):
    data = {"log_dir": str(tmp_path)}
    first = lab.send("lab/order", data, id="order-dup-1")
    run = lab.wait(first, status="Completed", timeout=60)
    capsys.readouterr()
    again = lab.send("lab/order", data, id="order-dup-1")  # a re-run cell with a fixed id
    assert again != first and lab.runs(event_id=again[0]) == []
    # Before: no run for this copy, so the wait ran out its timeout (RunWaitTimeout).
    same = lab.wait(again, status="Completed", timeout=30)
    assert same["id"] == run["id"]
    said = capsys.readouterr().out
    assert f"event {again[0]} is a duplicate of id 'order-dup-1'" in said
    assert "no new run" in said and first[0] in said
    both = lab.wait(first + again, timeout=30)  # two events, one run: listed once
    assert both["id"] == run["id"]
    assert h.executed(tmp_path, run["id"]).count("load") == 1


def test_a_fresh_event_without_a_run_still_times_out_with_its_reason(lab):
    ids = lab.send("lab/no-such-trigger", {"x": 1}, id="nobody-listens")
    with pytest.raises(waiting.RunWaitTimeout, match="have not started a run yet"):
        lab.wait(ids, timeout=2)
