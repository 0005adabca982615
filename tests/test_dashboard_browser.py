"""The dashboard in headless Chromium: send an event, watch the run fail, fix the code,
rerun from the failed step, see it complete; plus bulk Replay, Invoke, bulk cancel and the
clock bar.

Needs Debian chromium (skipped with the reason when absent) and the embedded engine.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import httpx
import inngest
import inngest.fast_api
import pytest
from fastapi import FastAPI

from dashboard_helpers import browser_page, require_chromium, synced_app

pytestmark = pytest.mark.browser
APP_ID = "dashboard-test"


class Shop:
    """An app whose `charge` step is broken until the test fixes it."""

    def __init__(self, engine_url: str) -> None:
        self.load_calls = 0
        self.fixed = False
        client = inngest.Inngest(app_id=APP_ID, is_production=False,
                                 api_base_url=engine_url, event_api_base_url=engine_url)

        @client.create_function(fn_id="checkout", retries=0,
                                trigger=inngest.TriggerEvent(event="shop/order"))
        async def checkout(ctx: inngest.Context) -> dict:
            async def load() -> dict:
                self.load_calls += 1
                return {"order": ctx.event.data.get("order_id"), "amount": 42}

            async def charge() -> str:
                if not self.fixed:
                    raise ValueError("card declined: bug in charge()")
                return f"charged {order['amount']}"

            order = await ctx.step.run("load", load)
            receipt = await ctx.step.run("charge", charge)
            return {"order": order["order"], "receipt": receipt}

        @client.create_function(fn_id="await-approval",
                                trigger=inngest.TriggerEvent(event="shop/review"))
        async def await_approval(ctx: inngest.Context) -> str:
            # The timeout is an outside-world wait: the engine never auto-advances to it.
            await ctx.step.wait_for_event("approval", event="shop/approved",
                                      timeout=timedelta(days=1))
            return "reviewed"

        @client.create_function(fn_id="nap", trigger=inngest.TriggerEvent(event="shop/nap"))
        async def nap(ctx: inngest.Context) -> str:
            await ctx.step.sleep("three-days", timedelta(days=3))
            return "rested"

        self.checkout, self.await_approval, self.nap = checkout, await_approval, nap
        self.app = FastAPI()
        inngest.fast_api.serve(self.app, client, [checkout, await_approval, nap])


@pytest.fixture(scope="module")
def shop(engine):
    require_chromium()
    shop = Shop(engine.url)
    with synced_app(engine.url, shop.app):
        yield shop


def run_status(page, status: str):
    return page.wait_for_selector(f"#run-status[data-status={status}]")


def test_send_event_fail_rerun_from_failed_step_complete(engine, shop):
    with browser_page() as page:
        page.goto(engine.url + "/#/events")
        page.fill("[data-testid=event-name]", "shop/order")
        page.fill("[data-testid=event-data]", '{"order_id": "o-1"}')
        page.click("[data-testid=event-send]")
        page.click("[data-testid=event-run-link]")

        run_status(page, "Failed")
        failed_url = page.url
        charge = page.wait_for_selector("[data-testid=step-row][data-step-name=charge]")
        assert "card declined" in charge.inner_text()

        shop.fixed = True  # the "deploy a fix" moment
        page.click("[data-testid=run-rerun-failed]")
        page.wait_for_function("url => location.href !== url", arg=failed_url)
        run_status(page, "Completed")
        assert "charged 42" in page.inner_text("[data-testid=run-output]")
        # Rerun from the failed step reuses `load` instead of running it again.
        assert shop.load_calls == 1
        load = page.query_selector("[data-testid=step-row][data-step-name=load]")
        if load is not None:
            assert load.get_attribute("data-memoized") == "true"
        assert page.js_errors == []


def test_bulk_replay_reruns_failed_runs_from_the_start(engine, shop):
    shop.fixed = False
    slug = shop.checkout.id
    since = httpx.get(engine.url + "/lab/v1/clock", timeout=10).json()["now"]
    sent = httpx.post(engine.url + "/e/lab", json=[
        {"name": "shop/order", "data": {"order_id": f"bulk-{i}"}} for i in range(2)],
        timeout=10).json()
    assert len(sent["ids"]) == 2
    with browser_page() as page:
        page.goto(engine.url + f"/#/runs?function={slug}")
        page.wait_for_function(
            "() => document.querySelectorAll('[data-testid=run-row][data-status=Failed]').length >= 2")
        shop.fixed = True
        calls_before = shop.load_calls
        done_before = len(httpx.get(engine.url + "/lab/v1/runs", params={
            "function": slug, "status": "Completed"}, timeout=10).json()["data"])
        assert page.input_value("[data-testid=replay-function]") == slug
        page.fill("[data-testid=replay-since]", since)
        page.fill("[data-testid=replay-error]", "card declined")
        page.click("[data-testid=bulk-replay-submit]")
        page.wait_for_selector("#flash[data-kind=info]")
        assert "Replayed 2 run(s)" in page.inner_text("#flash")
        page.wait_for_function(
            "n => document.querySelectorAll('[data-testid=run-row][data-status=Completed]').length >= n",
            arg=done_before + 2)
        # Replay starts over: `load` executed again in both new runs.
        assert shop.load_calls == calls_before + 2
        assert page.js_errors == []


def test_invoke_from_functions_view(engine, shop):
    slug = shop.checkout.id
    with browser_page() as page:
        page.goto(engine.url + "/#/functions")
        page.click(f"[data-testid=invoke-{slug}]")
        page.fill(f"[data-testid=invoke-data-{slug}]", '{"order_id": "o-invoked"}')
        page.click(f"[data-testid=invoke-submit-{slug}]")
        page.wait_for_url(re.compile(r"#/runs\?function="))
        page.wait_for_selector("[data-testid=run-row][data-status=Completed]")
        assert page.js_errors == []


def test_bad_json_payload_shows_an_error(engine, shop):
    with browser_page() as page:
        page.goto(engine.url + "/#/events")
        page.fill("[data-testid=event-name]", "shop/order")
        page.fill("[data-testid=event-data]", "{not json")
        page.click("[data-testid=event-send]")
        page.wait_for_selector("#flash[data-kind=error]")
        assert "not valid JSON" in page.inner_text("#flash")


def test_bulk_cancel_waiting_runs(engine, shop):
    slug = shop.await_approval.id
    sent = httpx.post(engine.url + "/e/lab", json=[
        {"name": "shop/review", "data": {"n": i}} for i in range(3)], timeout=10).json()
    assert len(sent["ids"]) == 3
    with browser_page() as page:
        page.goto(engine.url + f"/#/runs?function={slug}")
        page.wait_for_function(
            "() => document.querySelectorAll('[data-testid=run-row][data-status=Running]').length === 3")
        # A waiting run's page says what it waits for.
        page.click("[data-testid=run-row] [data-testid=run-link]")
        info = page.wait_for_selector("[data-testid=step-row][data-step-name=approval] "
                                      "[data-testid=step-info]")
        assert "waiting for shop/approved" in info.inner_text()
        page.go_back()
        page.wait_for_selector("[data-testid=runs-filter-function] option[value='%s']" % slug,
                               state="attached")
        page.select_option("[data-testid=runs-filter-function]", slug)
        assert page.input_value("[data-testid=bulk-function-id]") == slug
        assert page.input_value("[data-testid=bulk-app-id]") == APP_ID
        page.click("[data-testid=bulk-cancel-submit]")
        page.wait_for_function(
            "() => document.querySelectorAll('[data-testid=run-row][data-status=Cancelled]').length === 3")
        assert page.js_errors == []


def test_clock_bar_advances_virtual_time(engine, shop):
    with browser_page() as page:
        page.goto(engine.url + "/#/runs")
        page.wait_for_function("() => document.getElementById('clock-now').dateTime !== ''")
        before = page.get_attribute("#clock-now", "datetime")
        page.fill("[data-testid=clock-duration]", "2h")
        page.click("[data-testid=clock-advance]")
        page.wait_for_function("old => document.getElementById('clock-now').dateTime !== old",
                               arg=before)
        after = page.get_attribute("#clock-now", "datetime")
        moved = datetime.fromisoformat(after.replace("Z", "+00:00")) - \
            datetime.fromisoformat(before.replace("Z", "+00:00"))
        assert moved >= timedelta(hours=2)
        assert page.js_errors == []


def test_sleeping_run_wakes_with_to_next_timer(engine, shop):
    auto = httpx.post(engine.url + "/lab/v1/clock/auto", json={"enabled": False}, timeout=10)
    assert auto.status_code == 200, auto.text
    try:
        sent = httpx.post(engine.url + "/e/lab", json={"name": "shop/nap"}, timeout=10).json()
        with browser_page() as page:
            page.goto(engine.url + "/#/events")
            row = f"[data-testid=event-row][data-event-id='{sent['ids'][0]}']"
            page.click(f"{row} button")
            page.click(f"{row} [data-testid=event-run-link]")
            info = page.wait_for_selector("[data-testid=step-row][data-step-name=three-days] "
                                          "[data-testid=step-info]")
            assert "sleeping until" in info.inner_text()
            page.wait_for_selector("#clock-next-timer:not([disabled])")
            page.click("[data-testid=clock-next-timer]")
            run_status(page, "Completed")
            started, ended = (page.get_attribute("#run-head dl", "data-" + k) for k in ("started", "ended"))
            slept = datetime.fromisoformat(ended.replace("Z", "+00:00")) - \
                datetime.fromisoformat(started.replace("Z", "+00:00"))
            assert slept >= timedelta(days=3)
            assert page.js_errors == []
    finally:
        httpx.post(engine.url + "/lab/v1/clock/auto", json={"enabled": True}, timeout=10)
