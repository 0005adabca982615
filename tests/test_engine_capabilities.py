"""Engine capabilities the course needs beyond the dev server, driven through the real SDK:
slow steps that hold their slot on the virtual clock, the executing-step history, plan
limits, billed executions, bulk replay, cron time zones, manual invoke."""

from __future__ import annotations

import datetime
import json
from zoneinfo import ZoneInfo

import httpx
import inngest
import pytest

from engine_helpers import (advance, gql, make_client, send, serving, trace, wait_for,
                            wait_run, wait_run_for_event)
from lab_support.devserver import cron

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def client(fresh_engine):
    return make_client(fresh_engine, "cap-engine")


def lab_get(engine, path: str, **params) -> dict:
    r = httpx.get(f"{engine.url}/lab/v1/{path}", params=params, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def lab_post(engine, path: str, body: dict, status: int = 200) -> dict:
    r = httpx.post(f"{engine.url}/lab/v1/{path}", json=body, timeout=30)
    assert r.status_code == status, r.text
    return r.json()


def clock_ms(engine) -> int:
    return lab_get(engine, "clock")["now_ms"]


def test_a_slow_step_holds_its_slot_and_the_clock_stops_at_its_end(fresh_engine, client):
    ran = []

    @client.create_function(fn_id="work", trigger=inngest.TriggerEvent(event="c/work"),
                            concurrency=[inngest.Concurrency(limit=1)])
    async def work(ctx: inngest.Context) -> str:
        async def crunch() -> str:
            ran.append(ctx.event.data["n"])
            return "crunched"
        return await ctx.step.run("crunch", crunch)

    @client.create_function(fn_id="gate", trigger=inngest.TriggerEvent(event="c/gate"))
    async def gate(ctx: inngest.Context):
        # An outside-world deadline far after the slow step: waiting for it is not a jump.
        return await ctx.step.wait_for_event("ok", event="c/ok", timeout=datetime.timedelta(days=2))

    with serving(fresh_engine, client, [work, gate]):
        rule = lab_post(fresh_engine, "chaos", {"function": "work", "step": "crunch",
                                                "mode": "slow", "duration": "1h", "times": None})
        assert rule["times"] is None and rule["duration_ms"] == 3_600_000
        waiting = send(fresh_engine, "c/gate")
        wait_run_for_event(fresh_engine, waiting, status="Running")
        start = clock_ms(fresh_engine)
        ids = [send(fresh_engine, "c/work", {"n": n}) for n in range(2)]
        runs = [wait_run_for_event(fresh_engine, i, timeout=60) for i in ids]
        assert [r["status"] for r in runs] == ["Completed", "Completed"]
        elapsed = clock_ms(fresh_engine) - start
        # Two one-hour steps through one slot: two hours, and the clock went no further
        # (the open two-day wait is not a place auto-advance goes by itself).
        assert 2 * 3_600_000 <= elapsed < 2 * 3_600_000 + 60_000
        assert sorted(ran) == [0, 1]                     # each body ran once
        gate_run = wait_run_for_event(fresh_engine, waiting, status="Running")
        assert gate_run["status"] == "Running"
        stats = lab_get(fresh_engine, "stats/steps", function="cap-engine-work")
        assert stats["peak"] == 1 and stats["in_flight"] == 0
        spans = trace(fresh_engine, runs[0]["run_id"])["trace"]["childrenSpans"]
        crunch = [s for s in spans if s["name"] == "crunch"][0]
        assert crunch["status"] == "COMPLETED"


def test_step_history_is_reset_with_the_engine(fresh_engine, client):
    @client.create_function(fn_id="quick", trigger=inngest.TriggerEvent(event="c/quick"))
    async def quick(ctx: inngest.Context) -> str:
        return await ctx.step.run("one", lambda: "done")

    with serving(fresh_engine, client, [quick]):
        wait_run_for_event(fresh_engine, send(fresh_engine, "c/quick"))
        stats = lab_get(fresh_engine, "stats/steps")
        assert stats["peak"] >= 1 and stats["attempts"] >= 2 and stats["series"]
        assert stats["series"][-1][1:] == [0, 0]         # nothing executing or queued now
        lab_post(fresh_engine, "tier", {"tier": "hobby"})
        lab_post(fresh_engine, "reset", {})
        assert lab_get(fresh_engine, "stats/steps")["series"] == []
        assert lab_get(fresh_engine, "tier")["tier"] == "hobby"   # the plan outlives a reset
        assert httpx.get(fresh_engine.url + "/lab/v1/stats/steps",
                         params={"function": "nope"}).status_code == 404


def test_a_calls_start_is_one_instant_in_its_trace_and_in_the_stats(fresh_engine, client):
    """A learner windows the stats series by trace times ("executing while the gate was open":
    after the wait's start, before the timeout step's start). A step's trace start and its
    call's rise in the series must be the same millisecond, or a busy machine shows a call
    executing inside a window where nothing ran (seen in CI on notebook 15)."""
    from lab_support.devserver.ids import parse_time_ms

    @client.create_function(fn_id="gate", trigger=inngest.TriggerEvent(event="c/gated"))
    async def gate(ctx: inngest.Context) -> str:
        await ctx.step.run("prep", lambda: "ready")
        await ctx.step.wait_for_event("approval", event="c/approved",
                                      timeout=datetime.timedelta(hours=1))
        return await ctx.step.run("after", lambda: "escalated")

    def spans(run_id: str) -> dict:
        return {s["name"]: s for s in trace(fresh_engine, run_id)["trace"]["childrenSpans"]}

    with serving(fresh_engine, client, [gate]):
        runs = [wait_run_for_event(fresh_engine, send(fresh_engine, "c/gated", {"n": n}),
                                   status="Running")["run_id"] for n in range(8)]
        for run_id in runs:
            wait_for(lambda: "approval" in spans(run_id), message=f"{run_id}'s wait to open")
        advance(fresh_engine, duration="2h")
        for run_id in runs:
            wait_for(lambda: spans(run_id).get("after", {}).get("status") == "COMPLETED",
                     timeout=60, message=f"{run_id}'s timeout step")
        series = lab_get(fresh_engine, "stats/steps", function="cap-engine-gate")["series"]
    rises = {t for (t, n, _q), (_t0, before, _q0) in zip(series[1:], series) if n > before}
    rises |= {series[0][0]} if series and series[0][1] else set()
    for run_id in runs:
        found = spans(run_id)
        for step in ("approval", "after"):      # each began with a call taking its slot
            started = parse_time_ms(found[step]["startedAt"])
            assert started in rises, (f"{step} of {run_id} started at {started}; the series "
                                      f"shows calls starting at {sorted(rises)}")


def test_plan_endpoint_and_sync_limits(fresh_engine, client):
    plans = lab_get(fresh_engine, "tier")
    assert plans["tier"] is None and plans["plans"]["hobby"]["batch_max_size"] == 5
    assert lab_post(fresh_engine, "tier", {"tier": "gold"}, status=400)["error"].startswith(
        "unknown tier")
    lab_post(fresh_engine, "tier", {}, status=400)
    lab_post(fresh_engine, "tier", {"tier": "hobby"})

    @client.create_function(fn_id="slow-batch", trigger=inngest.TriggerEvent(event="c/row"),
                            batch_events=inngest.Batch(max_size=4,
                                                       timeout=datetime.timedelta(minutes=2)))
    async def slow_batch(ctx: inngest.Context) -> int:
        return len(ctx.events)

    r = httpx.post(fresh_engine.url + "/fn/register", json=_registration(slow_batch, client))
    assert r.status_code == 400
    assert "batch_timeout_invalid" in r.json()["error"] and "30s" in r.json()["error"]
    lab_post(fresh_engine, "tier", {"tier": "pro"})
    r = httpx.post(fresh_engine.url + "/fn/register", json=_registration(slow_batch, client))
    assert r.status_code == 200, r.text


def _registration(fn, client) -> dict:
    config = fn.get_config("http://127.0.0.1:1/api/inngest").main.to_dict()
    return {"appname": client.app_id, "url": "http://127.0.0.1:1/api/inngest",
            "functions": [config], "sdk": "py:v0.5", "framework": "fast_api", "v": "0.1"}


def test_executions_leave_out_memo_and_skipped_runs(fresh_engine, client):
    calls = {"second": 0}

    @client.create_function(fn_id="twostep", trigger=inngest.TriggerEvent(event="c/two"),
                            retries=0, rate_limit=inngest.RateLimit(
                                limit=1, period=datetime.timedelta(hours=1)))
    async def twostep(ctx: inngest.Context) -> str:
        await ctx.step.run("first", lambda: 1)

        async def second() -> int:
            calls["second"] += 1
            if calls["second"] == 1:
                raise RuntimeError("first try fails")
            return 2
        await ctx.step.run("second", second)
        await ctx.step.sleep("pause", datetime.timedelta(minutes=5))
        return "done"

    with serving(fresh_engine, client, [twostep]):
        failed = wait_run_for_event(fresh_engine, send(fresh_engine, "c/two", {"k": 1}))
        assert failed["status"] == "Failed"
        skipped = wait_run_for_event(fresh_engine, send(fresh_engine, "c/two", {"k": 2}))
        assert skipped["status"] == "Skipped"            # the rate limit: never executed
        counted = lab_get(fresh_engine, "executions", function="twostep")
        assert (counted["runs"], counted["steps"], counted["attempts"]) == (1, 2, 2)
        new_id = gql(fresh_engine, 'mutation($id: ULID!){ rerun(runID: $id, fromStep: '
                     '{stepID: "second"}) }', id=failed["run_id"])["rerun"]
        assert wait_run(fresh_engine, new_id)["status"] == "Completed"
        counted = lab_get(fresh_engine, "executions")
        # The rerun: "first" came from the memo (not billed); second + sleep executed.
        assert (counted["runs"], counted["steps"], counted["attempts"]) == (2, 4, 4)
        assert counted["executions"] == 6
        assert counted["by_function"][0]["function"] == "cap-engine-twostep"
        assert httpx.get(fresh_engine.url + "/lab/v1/executions",
                         params={"since": "yesterday"}).status_code == 400


def test_bulk_replay_selects_by_window_status_and_error(fresh_engine, client):
    @client.create_function(fn_id="fragile", trigger=inngest.TriggerEvent(event="c/fragile"),
                            retries=0)
    async def fragile(ctx: inngest.Context) -> str:
        async def call() -> str:
            if ctx.event.data.get("error"):
                raise RuntimeError(ctx.event.data["error"])
            return "fine"
        return await ctx.step.run("call", call)

    with serving(fresh_engine, client, [fragile]):
        first = clock_ms(fresh_engine)
        ids = [send(fresh_engine, "c/fragile", {"error": e})
               for e in ("upstream timeout", "card declined", None)]
        runs = [wait_run_for_event(fresh_engine, i) for i in ids]
        assert [r["status"] for r in runs] == ["Failed", "Failed", "Completed"]
        since = datetime.datetime.fromtimestamp((first - 1000) / 1000,
                                                datetime.timezone.utc).isoformat()
        out = lab_post(fresh_engine, "replay", {"function": "fragile", "since": since,
                                                "error_contains": "TIMEOUT"})["data"]
        assert [r["original_run_id"] for r in out["replayed"]] == [runs[0]["run_id"]]
        again = wait_run(fresh_engine, out["run_ids"][0])
        assert again["status"] == "Failed" and again["original_run_id"] == runs[0]["run_id"]
        out = lab_post(fresh_engine, "replay", {"function": "fragile", "since": since,
                                                "statuses": ["Failed", "COMPLETED"]})["data"]
        assert {r["original_run_id"] for r in out["replayed"]} == \
            {r["run_id"] for r in runs} | {again["run_id"]}
        until = datetime.datetime.fromtimestamp((first - 1000) / 1000,
                                                datetime.timezone.utc).isoformat()
        assert lab_post(fresh_engine, "replay", {"function": "fragile",
                                                 "until": until})["data"]["run_ids"] == []
        lab_post(fresh_engine, "replay", {"function": "nope"}, status=404)
        lab_post(fresh_engine, "replay", {}, status=400)


def test_cron_in_a_time_zone_fires_at_local_time_and_cannot_be_rerun(fresh_engine, client):
    @client.create_function(fn_id="morning",
                            trigger=inngest.TriggerCron(cron="TZ=America/New_York 30 9 * * *"))
    async def morning(ctx: inngest.Context) -> dict:
        return {"name": ctx.event.name, "scheduledAt": ctx.event.data.get("scheduledAt")}

    with serving(fresh_engine, client, [morning]):
        now = clock_ms(fresh_engine)
        tick = cron.next_tick_ms("TZ=America/New_York 30 9 * * *", now)
        local = datetime.datetime.fromtimestamp(tick / 1000, ZoneInfo("America/New_York"))
        assert (local.hour, local.minute) == (9, 30) and tick > now
        assert lab_get(fresh_engine, "clock")["next_timer_kind"] == "cron"
        advance(fresh_engine, to=datetime.datetime.fromtimestamp(
            (tick + 60_000) / 1000, datetime.timezone.utc).isoformat())
        runs = wait_for(lambda: httpx.get(fresh_engine.url + "/lab/v1/runs",
                                          params={"function": "morning"}).json()["data"],
                        20, "the cron run")
        run = wait_run(fresh_engine, runs[0]["run_id"])
        scheduled = datetime.datetime.fromtimestamp(tick / 1000, datetime.timezone.utc)
        assert run["output"] == {"name": "inngest/scheduled.timer",
                                 "scheduledAt": scheduled.strftime("%Y-%m-%dT%H:%M:%SZ")}
        body = httpx.post(fresh_engine.url + "/v0/gql", json={
            "query": "mutation($id: ULID!){ rerun(runID: $id) }",
            "variables": {"id": run["run_id"]}}).json()
        assert "cron-triggered runs cannot be rerun" in body["errors"][0]["message"]
        out = lab_post(fresh_engine, "replay", {"function": "morning",
                                                "statuses": ["COMPLETED"]})["data"]
        assert out["run_ids"] == [] and out["skipped"][0]["run_id"] == run["run_id"]
        # A manual invoke of the same function: the invoke event, no scheduledAt.
        assert gql(fresh_engine, 'mutation { invokeFunction(functionSlug: "cap-engine-morning",'
                                 ' data: {why: "test"}) }')["invokeFunction"] is True
        invoked = wait_for(lambda: [r for r in httpx.get(
            fresh_engine.url + "/lab/v1/runs", params={"function": "morning"}).json()["data"]
            if r["event_name"] == "inngest/function.invoked"], 20, "the invoked run")
        assert wait_run(fresh_engine, invoked[0]["run_id"])["output"] == {
            "name": "inngest/function.invoked", "scheduledAt": None}
        event = httpx.get(f"{fresh_engine.url}/v1/events/{invoked[0]['event_id']}").json()["data"]
        assert event["data"]["why"] == "test"
        assert event["data"]["_inngest"]["fn_id"] == "cap-engine-morning"


@pytest.mark.parametrize("expr, reason", [
    ("TZ=Mars/Olympus 0 9 * * *", "unknown time zone Mars/Olympus"),
    ("0 9 * * 7", "above maximum (6)"),
    ("@daily", "does not accept descriptors"),
    ("0 9 * *", "expected exactly 5 fields"),
    ("CRON_TZ=Europe/Paris", "needs a schedule"),
])
def test_bad_crons_are_refused_at_sync_with_the_servers_words(fresh_engine, client, expr, reason):
    @client.create_function(fn_id="bad-cron", trigger=inngest.TriggerCron(cron=expr))
    async def bad(ctx: inngest.Context) -> None:
        return None

    r = httpx.post(fresh_engine.url + "/fn/register", json=_registration(bad, client))
    assert r.status_code == 400
    assert "isn't a valid cron schedule" in r.json()["error"] and reason in r.json()["error"]


def test_cron_follows_robfig_rules_across_dst():
    def at(text: str) -> int:
        return int(datetime.datetime.fromisoformat(text).timestamp() * 1000)

    def iso(ms: int) -> str:
        return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M")

    ny = "TZ=America/New_York 30 2 * * *"      # 02:30 does not exist on 2026-03-08
    assert iso(cron.next_tick_ms(ny, at("2026-03-07T12:00:00+00:00"))) == "2026-03-09T06:30"
    assert iso(cron.next_tick_ms(ny, at("2026-03-08T00:00:00+00:00"))) == "2026-03-09T06:30"
    fall = "CRON_TZ=America/New_York 30 1 * * *"   # 01:30 happens twice on 2026-11-01
    first = cron.next_tick_ms(fall, at("2026-11-01T00:00:00+00:00"))
    second = cron.next_tick_ms(fall, first)
    assert (iso(first), iso(second)) == ("2026-11-01T05:30", "2026-11-01T06:30")
    # Day of month OR day of week when neither is '*'; AND when one is.
    assert iso(cron.next_tick_ms("0 9 1 * MON", at("2026-06-02T00:00:00+00:00"))) == \
        "2026-06-08T09:00"
    assert iso(cron.next_tick_ms("0 9 * * MON", at("2026-06-02T00:00:00+00:00"))) == \
        "2026-06-08T09:00"
    assert iso(cron.next_tick_ms("0 9 */10 * *", at("2026-06-02T00:00:00+00:00"))) == \
        "2026-06-11T09:00"
    assert json.dumps(cron.validate("*/15 9-17 * JAN-MAR mon-fri")) == "null"


def test_cron_jitter_delays_the_firing_not_the_slot(fresh_engine, client):
    @client.create_function(fn_id="spread", trigger=inngest.TriggerCron(cron="0 * * * *",
                                                                        jitter="30s"))
    async def spread(ctx: inngest.Context) -> dict:
        return dict(ctx.event.data)

    with serving(fresh_engine, client, [spread]):
        tick = cron.next_tick_ms("0 * * * *", clock_ms(fresh_engine))
        advance(fresh_engine, to=datetime.datetime.fromtimestamp(
            (tick + 60_000) / 1000, datetime.timezone.utc).isoformat())
        runs = wait_for(lambda: httpx.get(fresh_engine.url + "/lab/v1/runs",
                                          params={"function": "spread"}).json()["data"],
                        20, "the cron run")
        data = wait_run(fresh_engine, runs[0]["run_id"])["output"]
        slot = datetime.datetime.fromisoformat(data["scheduledAt"].replace("Z", "+00:00"))
        fired = datetime.datetime.fromisoformat(data["fireAt"].replace("Z", "+00:00"))
        assert int(slot.timestamp() * 1000) == tick
        assert datetime.timedelta(seconds=1) <= fired - slot <= datetime.timedelta(seconds=31)

    @client.create_function(fn_id="too-jittery", trigger=inngest.TriggerCron(cron="0 * * * *",
                                                                             jitter="10m"))
    async def too_jittery(ctx: inngest.Context) -> None:
        return None

    r = httpx.post(fresh_engine.url + "/fn/register", json=_registration(too_jittery, client))
    assert r.status_code == 400 and "cron jitter must be less than or equal to 5m0s" in r.text
