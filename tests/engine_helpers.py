"""Helpers for engine tests: serve SDK functions in a thread, sync, observe, wait."""

from __future__ import annotations

import contextlib
import time

import httpx
import inngest
import inngest.fast_api
from fastapi import FastAPI

from lab_support.host import ThreadedHost


def make_client(engine, app_id: str = "test-app") -> inngest.Inngest:
    return inngest.Inngest(app_id=app_id, is_production=False, api_base_url=engine.url,
                           event_api_base_url=engine.url)


@contextlib.contextmanager
def serving(engine, client: inngest.Inngest, functions: list):
    app = FastAPI()
    inngest.fast_api.serve(app, client, functions)
    host = ThreadedHost(app).start()
    try:
        sync(engine, host.url + "/api/inngest")
        yield host
    finally:
        host.stop()


def sync(engine, url: str) -> dict:
    r = httpx.post(engine.url + "/lab/v1/sync", json={"url": url}, timeout=30)
    assert r.status_code == 200, f"sync failed: {r.status_code} {r.text}"
    return r.json()


def wait_for(predicate, timeout: float = 20.0, message: str = "condition", interval=0.02):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}; last value: {last!r}")


def event_runs(engine, event_id: str) -> list[dict]:
    body = httpx.get(f"{engine.url}/v1/events/{event_id}/runs", timeout=10).json()
    return body.get("data") or []


def run(engine, run_id: str) -> dict:
    return httpx.get(f"{engine.url}/v1/runs/{run_id}", timeout=10).json()["data"]


TERMINAL = {"Completed", "Failed", "Cancelled", "Skipped"}


def wait_run_for_event(engine, event_id: str, status=TERMINAL, timeout=20.0) -> dict:
    status = {status} if isinstance(status, str) else set(status)

    def done():
        runs = event_runs(engine, event_id)
        if runs:
            r = run(engine, runs[0]["run_id"])
            return r if r["status"] in status else None
        return None
    return wait_for(done, timeout, f"a run of event {event_id} with status in {status}")


def wait_run(engine, run_id: str, status=TERMINAL, timeout=20.0) -> dict:
    status = {status} if isinstance(status, str) else set(status)
    return wait_for(lambda: (lambda r: r if r["status"] in status else None)(run(engine, run_id)),
                    timeout, f"run {run_id} with status in {status}")


def gql(engine, query: str, **variables) -> dict:
    body = httpx.post(engine.url + "/v0/gql", json={"query": query, "variables": variables},
                      timeout=10).json()
    assert not body.get("errors"), body["errors"]
    return body["data"]


TRACE = """query($id:String!){ run(runID:$id){ id status output trace{ name status
  childrenSpans{ name status stepOp stepID attempts startedAt endedAt outputID memoized
  stepInfo{ __typename ... on SleepStepInfo{sleepUntil}
  ... on WaitForEventStepInfo{eventName expression timeout foundEventID timedOut}
  ... on InvokeStepInfo{functionID runID timedOut} }
  childrenSpans{ name status attempts } } } } }"""


def trace(engine, run_id: str) -> dict:
    return gql(engine, TRACE, id=run_id)["run"]


def send(engine, name: str, data: dict | None = None, **extra) -> str:
    r = httpx.post(engine.url + "/e/test", json={"name": name, "data": data or {}, **extra},
                   timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["ids"][0]


def advance(engine, **body) -> dict:
    r = httpx.post(engine.url + "/lab/v1/clock/advance", json=body, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()
