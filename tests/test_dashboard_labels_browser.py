"""The dashboard says what lab.trace says (headless Chromium): a retried step is "retried"
with attempts numbered from 1, a step whose only attempt failed is "failed", a cancelled
run's sleep is "Cancelled" (not "Running"), and an error banner does not outlive its page.

Needs Debian chromium (skipped with the reason when absent) and the embedded engine."""

from __future__ import annotations

from datetime import timedelta

import httpx
import inngest
import inngest.fast_api
import pytest
from fastapi import FastAPI

from dashboard_helpers import browser_page, require_chromium, synced_app
from lab_support import tracing
from lab_support.client import EngineClient
from lab_support.waiting import wait_for

pytestmark = pytest.mark.browser
APP_ID = "labels-test"


def make_app(engine_url: str) -> FastAPI:
    client = inngest.Inngest(app_id=APP_ID, is_production=False, api_base_url=engine_url,
                             event_api_base_url=engine_url)

    @client.create_function(fn_id="flaky", trigger=inngest.TriggerEvent(event="labels/flaky"))
    async def flaky(ctx: inngest.Context) -> str:
        async def save() -> str:
            if ctx.attempt < 2:
                raise RuntimeError(f"database blip on attempt {ctx.attempt}")
            return "saved"

        await ctx.step.run("load", lambda: "loaded")
        return await ctx.step.run("save", save)

    @client.create_function(fn_id="broken", retries=0,
                            trigger=inngest.TriggerEvent(event="labels/broken"))
    async def broken(ctx: inngest.Context) -> str:
        def charge() -> str:
            raise ValueError("card declined")

        return await ctx.step.run("charge", charge)

    @client.create_function(fn_id="nap", trigger=inngest.TriggerEvent(event="labels/nap"))
    async def nap(ctx: inngest.Context) -> str:
        await ctx.step.sleep("three-days", timedelta(days=3))
        return "rested"

    app = FastAPI()
    inngest.fast_api.serve(app, client, [flaky, broken, nap])
    return app


class Runs:
    """Send events and wait for runs through the lab's own client (as lab.wait does)."""

    def __init__(self, url: str) -> None:
        self.api = EngineClient(url)

    def run_for(self, name: str, status: str | None = None) -> dict:
        (event_id,) = self.api.send([{"name": name, "data": {}}])
        lab_like = type("L", (), {"_require_engine": lambda _s: self.api, "_host": None})()
        return wait_for(lab_like, event_id, status=status, timeout=60)

    def trace_rows(self, run_id: str) -> dict[str, dict]:
        return {r["step"]: r for r in tracing.trace_rows(self.api.trace(run_id, memo_field=True))}


@pytest.fixture(scope="module")
def runs(engine):
    require_chromium()
    with synced_app(engine.url, make_app(engine.url)):
        helper = Runs(engine.url)
        yield helper
        helper.api.close()


def step(page, name: str) -> dict:
    row = page.wait_for_selector(f"[data-testid=step-row][data-step-name='{name}']")
    return {"status": row.get_attribute("data-step-status"),
            "source": row.query_selector("[data-testid=step-origin]").inner_text(),
            "attempts": row.query_selector("[data-testid=step-attempts]").inner_text(),
            "tries": [a.inner_text() for a in row.query_selector_all("[data-testid=step-attempt]")]}


def test_retried_and_failed_steps_read_as_in_the_trace(engine, runs):
    flaky = runs.run_for("labels/flaky", "Completed")
    broken = runs.run_for("labels/broken", "Failed")
    with browser_page() as page:
        page.goto(f"{engine.url}/#/runs/{flaky['id']}")
        page.wait_for_selector("#run-status[data-status=Completed]")
        save = step(page, "save")
        assert save["attempts"] == "attempts: 3"
        assert save["tries"] == ["attempt 1: Failed", "attempt 2: Failed", "attempt 3: Completed"]
        trace = runs.trace_rows(flaky["id"])
        assert save["source"] == trace["save"]["source"] == "retried"
        assert step(page, "load")["source"] == trace["load"]["source"] == "executed"

        page.goto(f"{engine.url}/#/runs/{broken['id']}")
        page.wait_for_selector("#run-status[data-status=Failed]")
        charge = step(page, "charge")
        assert charge["source"] == runs.trace_rows(broken["id"])["charge"]["source"] == "failed"
        assert charge["attempts"] == "attempts: 1" and charge["tries"] == []
        assert page.js_errors == []


def test_a_cancelled_runs_sleep_is_cancelled(engine, runs):
    auto = httpx.post(engine.url + "/lab/v1/clock/auto", json={"enabled": False}, timeout=10)
    assert auto.status_code == 200, auto.text
    try:
        napping = runs.run_for("labels/nap", "Running")
        runs.api.cancel_run(napping["id"])
        with browser_page() as page:
            page.goto(f"{engine.url}/#/runs/{napping['id']}")
            page.wait_for_selector("#run-status[data-status=Cancelled]")
            sleep = step(page, "three-days")
            trace = runs.trace_rows(napping["id"])["three-days"]
            assert sleep["status"] == "Cancelled" and trace["status"] == "CANCELLED"
            assert sleep["source"] == trace["source"] == "cancelled"
            assert page.js_errors == []
    finally:
        httpx.post(engine.url + "/lab/v1/clock/auto", json={"enabled": True}, timeout=10)


def test_an_error_banner_does_not_outlive_its_page(engine, runs):
    with browser_page() as page:
        page.goto(engine.url + "/#/events")
        page.fill("[data-testid=event-name]", "labels/flaky")
        page.fill("[data-testid=event-data]", "{not json")
        page.click("[data-testid=event-send]")
        page.wait_for_selector("#flash[data-kind=error]")
        page.fill("[data-testid=event-data]", "{}")
        page.click("[data-testid=event-send]")
        page.click("[data-testid=event-run-link]")
        page.wait_for_selector("[data-testid=run-id]")
        assert page.get_attribute("#flash", "data-kind") != "error"
        # An error on one page, then a link to another: the banner goes with the page.
        page.evaluate("flash('GET /lab/v1/runs failed (500): boom', 'error', 'runs')")
        page.goto(engine.url + "/#/runs")
        page.wait_for_selector("[data-testid=run-row]")
        assert page.is_hidden("#flash")
        assert page.js_errors == []
