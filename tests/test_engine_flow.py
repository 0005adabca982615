"""Flow control observed from the host side (what ran, when, how many at once) and
through the engine's run records. Times are engine-clock times (virtual clock)."""

from __future__ import annotations

import datetime
import threading
from collections import Counter, defaultdict

import httpx
import inngest

from engine_helpers import (advance, event_runs, gql, make_client, run, send, serving, trace,
                            wait_for, wait_run_for_event)

td = datetime.timedelta


def lab_runs(engine, function: str) -> list[dict]:
    return httpx.get(engine.url + "/lab/v1/runs", params={"function": function, "limit": 5000},
                     timeout=30).json()["data"]


def ms(text: str) -> int:
    return int(datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def send_many(engine, events: list[dict]) -> list[str]:
    r = httpx.post(engine.url + "/e/k", json=events, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()["ids"]


class InFlight:
    """Counts step bodies running at once, overall and per key."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now: Counter = Counter()
        self.peak: Counter = Counter()
        self.done = 0

    def __call__(self, key: str, work=lambda: None):
        with self.lock:
            self.now["*"] += 1
            self.now[key] += 1
            self.peak["*"] = max(self.peak["*"], self.now["*"])
            self.peak[key] = max(self.peak[key], self.now[key])
        try:
            work()
        finally:
            with self.lock:
                self.now["*"] -= 1
                self.now[key] -= 1
                self.done += 1


def test_concurrency_caps_hold_under_a_1000_event_burst(engine):
    client = make_client(engine, "burst")
    meter = InFlight()
    pause = threading.Event()

    @client.create_function(fn_id="capped", trigger=inngest.TriggerEvent(event="f/burst"),
                            concurrency=[inngest.Concurrency(limit=10),
                                         inngest.Concurrency(limit=2, key="event.data.customer_id")])
    def capped(ctx: inngest.ContextSync) -> str:
        cid = ctx.event.data["customer_id"]
        ctx.step.run("work", lambda: meter(cid, lambda: pause.wait(0.002)))
        return cid

    with serving(engine, client, [capped]):
        ids = send_many(engine, [{"name": "f/burst", "data": {"customer_id": f"c{i % 25}"}}
                                 for i in range(1000)])
        assert len(ids) == 1000
        wait_for(lambda: meter.done >= 1000, 240, "all 1000 step bodies", interval=0.2)
        runs = wait_for(lambda: (lambda rs: rs if sum(r["status"] == "Completed" for r in rs) == 1000
                                 else None)(lab_runs(engine, "capped")), 120,
                        "1000 completed runs", interval=0.5)
        assert len(runs) == 1000, "nothing dropped, nothing doubled"
        assert meter.peak["*"] <= 10, f"global cap exceeded: {meter.peak['*']}"
        worst = max(v for k, v in meter.peak.items() if k != "*")
        assert worst <= 2, f"per-customer cap exceeded: {worst}"
        assert meter.peak["*"] >= 2, "the burst actually ran concurrently"


def test_keyed_concurrency_lets_a_small_tenant_through(fresh_engine):
    client = make_client(fresh_engine, "fair")
    order = []
    lock = threading.Lock()

    @client.create_function(fn_id="tenant", trigger=inngest.TriggerEvent(event="f/tenant"),
                            concurrency=[inngest.Concurrency(limit=1, key="event.data.tenant")])
    def tenant(ctx: inngest.ContextSync) -> None:
        def body():
            threading.Event().wait(0.01)
            with lock:
                order.append(ctx.event.data["tenant"])
        ctx.step.run("work", body)

    with serving(fresh_engine, client, [tenant]):
        send_many(fresh_engine, [{"name": "f/tenant", "data": {"tenant": "big"}} for _ in range(30)]
                  + [{"name": "f/tenant", "data": {"tenant": "small"}}])
        wait_for(lambda: len(order) == 31, 60, "all runs")
        assert order.index("small") < 10, f"the small tenant waited behind the big one: {order}"


def test_throttle_spaces_starts_and_drops_nothing(fresh_engine):
    client = make_client(fresh_engine, "thr")

    @client.create_function(fn_id="throttled", trigger=inngest.TriggerEvent(event="f/thr"),
                            throttle=inngest.Throttle(limit=2, period=td(seconds=4)))
    def throttled(ctx: inngest.ContextSync) -> int:
        return ctx.event.data["n"]

    with serving(fresh_engine, client, [throttled]):
        send_many(fresh_engine, [{"name": "f/thr", "data": {"n": i}} for i in range(5)])
        runs = wait_for(lambda: (lambda rs: rs if len(rs) == 5 and all(r["status"] == "Completed" for r in rs)
                                 else None)(lab_runs(fresh_engine, "throttled")), 30, "5 runs")
        starts = sorted(ms(r["started_at"]) for r in runs)
        offsets = [s - starts[0] for s in starts]
        assert offsets[2] < 1000, f"limit + burst = 3 start at once: {offsets}"
        assert offsets[3] >= 1900 and offsets[4] >= 3900, f"then one per period/limit: {offsets}"


def test_rate_limit_skips_and_idempotency_keeps_one(fresh_engine):
    client = make_client(fresh_engine, "rl")

    @client.create_function(fn_id="limited", trigger=inngest.TriggerEvent(event="f/rl"),
                            rate_limit=inngest.RateLimit(limit=1, period=td(seconds=30)))
    def limited(ctx: inngest.ContextSync) -> None:
        return None

    @client.create_function(fn_id="idem", trigger=inngest.TriggerEvent(event="f/order"),
                            idempotency="event.data.order_id")
    def idem(ctx: inngest.ContextSync) -> str:
        return ctx.event.data["order_id"]

    with serving(fresh_engine, client, [limited, idem]):
        send_many(fresh_engine, [{"name": "f/rl"}] * 3)
        send_many(fresh_engine, [{"name": "f/order", "data": {"order_id": "o-1"}}] * 3
                  + [{"name": "f/order", "data": {"order_id": "o-2"}}])
        rl = wait_for(lambda: (lambda rs: rs if len(rs) == 3 and all(r["ended_at"] for r in rs) else None)(
            lab_runs(fresh_engine, "limited")), 20, "three rate-limited outcomes")
        assert Counter(r["status"] for r in rl) == {"Completed": 1, "Skipped": 2}
        assert all("rate limit" in r["skip_reason"] for r in rl if r["status"] == "Skipped")
        idem_runs = wait_for(lambda: (lambda rs: rs if len(rs) == 4 and all(r["ended_at"] for r in rs) else None)(
            lab_runs(fresh_engine, "idem")), 20, "idempotency outcomes")
        done = sorted(r["output"] for r in idem_runs if r["status"] == "Completed")
        assert done == ["o-1", "o-2"], "one run per idempotency key"


def test_debounce_runs_once_with_the_last_event(fresh_engine):
    client = make_client(fresh_engine, "deb")
    seen = []

    @client.create_function(fn_id="debounced", trigger=inngest.TriggerEvent(event="f/typing"),
                            debounce=inngest.Debounce(period=td(seconds=5), key="event.data.user"))
    def debounced(ctx: inngest.ContextSync) -> str:
        seen.append((ctx.event.data["user"], ctx.event.data["text"]))
        return ctx.event.data["text"]

    with serving(fresh_engine, client, [debounced]):
        httpx.post(fresh_engine.url + "/lab/v1/clock/auto", json={"enabled": False})
        for text in ("h", "he", "hel", "hello"):
            send(fresh_engine, "f/typing", {"user": "u1", "text": text})
        send(fresh_engine, "f/typing", {"user": "u2", "text": "bye"})
        assert seen == [], "nothing runs while events keep arriving"
        advance(fresh_engine, seconds=6)
        wait_for(lambda: len(seen) == 2, 10, "one run per debounce key")
        assert sorted(seen) == [("u1", "hello"), ("u2", "bye")]


def test_priority_jumps_the_queue(fresh_engine):
    client = make_client(fresh_engine, "prio")
    gate = threading.Event()
    order = []

    @client.create_function(fn_id="prioritized", trigger=inngest.TriggerEvent(event="f/prio"),
                            concurrency=[inngest.Concurrency(limit=1)],
                            priority=inngest.Priority(run="event.data.vip ? 600 : 0"))
    def prioritized(ctx: inngest.ContextSync) -> None:
        name = ctx.event.data["name"]
        if name == "blocker":
            ctx.step.run("hold", lambda: gate.wait(20))
        order.append(name)

    with serving(fresh_engine, client, [prioritized]):
        send(fresh_engine, "f/prio", {"name": "blocker", "vip": False})
        wait_for(lambda: lab_runs(fresh_engine, "prioritized")[0]["status"] == "Running", 10, "blocker")
        for name in ("plain-1", "plain-2"):
            send(fresh_engine, "f/prio", {"name": name, "vip": False})
        send(fresh_engine, "f/prio", {"name": "vip", "vip": True})
        gate.set()
        wait_for(lambda: len(order) == 4, 20, "all four runs")
        assert order.index("vip") < order.index("plain-1"), order
        assert order.index("vip") < order.index("plain-2"), order


def test_batches_fill_or_time_out(fresh_engine):
    client = make_client(fresh_engine, "bat")
    sizes = []

    @client.create_function(fn_id="batched", trigger=inngest.TriggerEvent(event="f/ticket"),
                            batch_events=inngest.Batch(max_size=5, timeout=td(seconds=3)))
    def batched(ctx: inngest.ContextSync) -> int:
        sizes.append(len(ctx.events))
        return len(ctx.events)

    with serving(fresh_engine, client, [batched]):
        send_many(fresh_engine, [{"name": "f/ticket", "data": {"n": i}} for i in range(12)])
        wait_for(lambda: sum(sizes) == 12, 20, "all 12 events processed")
        assert sorted(sizes) == [2, 5, 5]


def test_cancel_on_event_and_function_timeouts(fresh_engine):
    client = make_client(fresh_engine, "canc")

    @client.create_function(fn_id="cancellable", trigger=inngest.TriggerEvent(event="f/order.placed"),
                            cancel=[inngest.Cancel(event="f/order.cancelled",
                                                   if_exp="async.data.order_id == event.data.order_id")])
    def cancellable(ctx: inngest.ContextSync) -> str:
        ctx.step.sleep("wait-a-day", td(days=1))
        return "shipped"

    @client.create_function(fn_id="bounded", trigger=inngest.TriggerEvent(event="f/slow"),
                            timeouts=inngest.Timeouts(finish=td(hours=1)))
    def bounded(ctx: inngest.ContextSync) -> str:
        ctx.step.sleep("too-long", td(hours=2))
        return "finished"

    with serving(fresh_engine, client, [cancellable, bounded]):
        httpx.post(fresh_engine.url + "/lab/v1/clock/auto", json={"enabled": False})
        keep = send(fresh_engine, "f/order.placed", {"order_id": "A"})
        drop = send(fresh_engine, "f/order.placed", {"order_id": "B"})
        slow = send(fresh_engine, "f/slow")
        wait_for(lambda: all(event_runs(fresh_engine, e) and
                             trace(fresh_engine, event_runs(fresh_engine, e)[0]["run_id"])["trace"]["childrenSpans"]
                             for e in (keep, drop, slow)), 10, "all three sleeping")
        send(fresh_engine, "f/order.cancelled", {"order_id": "B"})
        advance(fresh_engine, duration="2d")
        assert wait_run_for_event(fresh_engine, keep)["output"] == "shipped"
        assert wait_run_for_event(fresh_engine, drop)["status"] == "Cancelled"
        assert wait_run_for_event(fresh_engine, slow)["status"] == "Cancelled"


def test_bulk_cancel_by_function_window_and_expression(fresh_engine):
    client = make_client(fresh_engine, "bulk")

    @client.create_function(fn_id="waiter", trigger=inngest.TriggerEvent(event="f/wait"))
    def waiter(ctx: inngest.ContextSync) -> None:
        ctx.step.wait_for_event("never", event="f/never", timeout=td(days=7))

    with serving(fresh_engine, client, [waiter]):
        send_many(fresh_engine, [{"name": "f/wait", "data": {"tier": "free" if i % 2 else "pro"}}
                                 for i in range(10)])
        wait_for(lambda: (lambda rs: len(rs) == 10 and all(r["status"] == "Running" for r in rs))(
            lab_runs(fresh_engine, "waiter")), 20, "ten waiting runs")
        now = httpx.get(fresh_engine.url + "/lab/v1/clock").json()["now"]
        r = httpx.post(fresh_engine.url + "/v1/cancellations", json={
            "app_id": "bulk", "function_id": "bulk-waiter", "started_before": now,
            "started_after": "2000-01-01T00:00:00Z", "if": "event.data.tier == 'free'"})
        assert r.status_code == 200, r.text
        assert len(r.json()["data"]["cancelled_run_ids"]) == 5
        statuses = Counter(x["status"] for x in lab_runs(fresh_engine, "waiter"))
        assert statuses == {"Cancelled": 5, "Running": 5}
        listed = httpx.get(fresh_engine.url + "/v1/cancellations").json()["data"]
        assert len(listed) == 1
        bad = httpx.post(fresh_engine.url + "/v1/cancellations", json={"app_id": "bulk"})
        assert bad.status_code == 400
        other_app = httpx.post(fresh_engine.url + "/v1/cancellations", json={
            "app_id": "some-other-app", "function_id": "bulk-waiter", "started_before": now})
        assert other_app.status_code == 404, "a function is cancelled only within its own app"
        assert Counter(x["status"] for x in lab_runs(fresh_engine, "waiter")) == {"Cancelled": 5, "Running": 5}


def test_singleton_skips_while_one_runs(fresh_engine):
    client = make_client(fresh_engine, "single")
    gate = threading.Event()

    @client.create_function(fn_id="solo", trigger=inngest.TriggerEvent(event="f/solo"),
                            singleton=inngest.Singleton(mode="skip"))
    def solo(ctx: inngest.ContextSync) -> str:
        ctx.step.run("hold", lambda: gate.wait(20))
        return "done"

    with serving(fresh_engine, client, [solo]):
        first = send(fresh_engine, "f/solo")
        wait_for(lambda: event_runs(fresh_engine, first), 10, "first run")
        second = send(fresh_engine, "f/solo")
        assert wait_run_for_event(fresh_engine, second)["status"] == "Skipped"
        gate.set()
        assert wait_run_for_event(fresh_engine, first)["status"] == "Completed"


def test_chaos_raise_and_lost_response_are_reproducible(fresh_engine):
    client = make_client(fresh_engine, "chaos")
    bodies = defaultdict(int)

    @client.create_function(fn_id="charge", trigger=inngest.TriggerEvent(event="f/charge"))
    def charge(ctx: inngest.ContextSync) -> str:
        ctx.step.run("load", lambda: bodies.__setitem__("load", bodies["load"] + 1))
        ctx.step.run("pay", lambda: bodies.__setitem__("pay", bodies["pay"] + 1))
        return "paid"

    with serving(fresh_engine, client, [charge]):
        r = httpx.post(fresh_engine.url + "/lab/v1/chaos",
                       json={"function": "charge", "step": "pay", "times": 2, "mode": "raise"})
        assert r.status_code == 200
        result = wait_run_for_event(fresh_engine, send(fresh_engine, "f/charge"))
        assert result["status"] == "Completed"
        assert bodies == {"load": 1, "pay": 1}, "raise fails the step before its body runs"
        spans = {s["name"]: s for s in trace(fresh_engine, result["run_id"])["trace"]["childrenSpans"]}
        assert spans["pay"]["attempts"] == 3

        bodies.clear()
        httpx.post(fresh_engine.url + "/lab/v1/chaos",
                   json={"function": "charge", "step": "pay", "times": 1, "mode": "lose_response"})
        result = wait_run_for_event(fresh_engine, send(fresh_engine, "f/charge"))
        assert result["status"] == "Completed"
        assert bodies == {"load": 1, "pay": 2}, "a lost response means the body runs again"
        bodies.clear()
        httpx.post(fresh_engine.url + "/lab/v1/chaos",
                   json={"function": "charge", "step": "pay", "times": 5, "mode": "http_503"})
        result = wait_run_for_event(fresh_engine, send(fresh_engine, "f/charge"))
        assert result["status"] == "Failed", "5 failed calls use up the 5 attempts"
        assert "http_503" in result["output"]["message"]
        assert bodies == {"load": 1}, "the app was never reached for the failing step"
        rules = httpx.get(fresh_engine.url + "/lab/v1/chaos").json()["data"]
        assert all(rule["remaining"] == 0 for rule in rules)
        httpx.post(fresh_engine.url + "/lab/v1/reset")
        assert lab_runs(fresh_engine, "charge") == [], "reset forgets runs"
        assert httpx.get(fresh_engine.url + "/v1/apps/chaos/functions").json(), "but keeps apps"


def test_virtual_clock_three_cases(fresh_engine):
    client = make_client(fresh_engine, "clock")

    @client.create_function(fn_id="nap", trigger=inngest.TriggerEvent(event="f/nap"))
    def nap(ctx: inngest.ContextSync) -> str:
        ctx.step.sleep("three-days", td(days=3))
        return "awake"

    @client.create_function(fn_id="hitl", trigger=inngest.TriggerEvent(event="f/hitl"))
    def hitl(ctx: inngest.ContextSync) -> str:
        got = ctx.step.wait_for_event("decision", event="f/decision", timeout=td(hours=24))
        return "decided" if got else "timed out"

    @client.create_function(fn_id="nine", trigger=inngest.TriggerCron(cron="0 9 * * *"))
    def nine(ctx: inngest.ContextSync) -> str:
        return ctx.event.data["scheduledAt"]

    with serving(fresh_engine, client, [nap, hitl, nine]):
        start = httpx.get(fresh_engine.url + "/lab/v1/clock").json()["now_ms"]
        slept = wait_run_for_event(fresh_engine, send(fresh_engine, "f/nap"))
        assert slept["output"] == "awake"
        assert ms(slept["ended_at"]) - start >= 3 * 86_400_000
        # Time passing for the sleeping run passed for the 09:00 schedule too.
        cron_runs = wait_for(lambda: (lambda rs: rs if len(rs) >= 3 and all(r["output"] for r in rs)
                                      else None)(lab_runs(fresh_engine, "nine")), 10, "daily runs")
        assert all(r["output"].endswith("T09:00:00Z") for r in cron_runs)
        waiting = send(fresh_engine, "f/hitl")
        wait_for(lambda: event_runs(fresh_engine, waiting), 10, "the HITL run")
        assert run(fresh_engine, event_runs(fresh_engine, waiting)[0]["run_id"])["status"] == "Running", \
            "an open wait is never timed out by auto-advance"
        advance(fresh_engine, duration="25h")
        assert wait_run_for_event(fresh_engine, waiting)["output"] == "timed out"


def test_start_timeout_cancels_a_run_that_waited_too_long_in_the_queue(fresh_engine):
    client = make_client(fresh_engine, "startto")
    gate = threading.Event()

    @client.create_function(fn_id="queued", trigger=inngest.TriggerEvent(event="f/queued"),
                            concurrency=[inngest.Concurrency(limit=1)],
                            timeouts=inngest.Timeouts(start=td(seconds=10)))
    def queued(ctx: inngest.ContextSync) -> str:
        if ctx.event.data["hold"]:
            ctx.step.run("hold", lambda: gate.wait(20))
        return "started"

    with serving(fresh_engine, client, [queued]):
        holder = send(fresh_engine, "f/queued", {"hold": True})
        wait_for(lambda: event_runs(fresh_engine, holder) and
                 event_runs(fresh_engine, holder)[0]["status"] == "Running", 10, "the holder")
        late = send(fresh_engine, "f/queued", {"hold": False})
        assert wait_for(lambda: event_runs(fresh_engine, late), 5, "the queued run")[0]["status"] == "Scheduled"
        advance(fresh_engine, seconds=11)
        assert wait_run_for_event(fresh_engine, late)["status"] == "Cancelled"
        gate.set()
        assert wait_run_for_event(fresh_engine, holder)["output"] == "started"


def test_a_negative_priority_delays_each_start_and_step_but_not_a_sleeps_end(fresh_engine):
    """Inngest's docs: a negative factor delays the run's jobs by that many seconds (the real
    server moves each start and edge item's time). A sleep still ends on time, and a positive
    factor only ranks: it never makes a job due early."""
    client = make_client(fresh_engine, "negprio")

    @client.create_function(fn_id="tiered", trigger=inngest.TriggerEvent(event="f/tiered"),
                            priority=inngest.Priority(run="int(event.data.factor)"))
    def tiered(ctx: inngest.ContextSync) -> str:
        ctx.step.run("a", lambda: "a")
        ctx.step.sleep("nap", td(hours=1))
        ctx.step.run("b", lambda: "b")
        return "done"

    times = "query($id:String!){ run(runID:$id){ status queuedAt startedAt endedAt } }"
    timings = {}   # factor -> (queued to started, queued to ended) in ms
    with serving(fresh_engine, client, [tiered]):
        for factor in (-100, 0, 100):
            event_id = send(fresh_engine, "f/tiered", {"factor": factor})
            done = wait_run_for_event(fresh_engine, event_id)
            assert done["status"] == "Completed", done
            info = gql(fresh_engine, times, id=done["run_id"])["run"]
            timings[factor] = (ms(info["startedAt"]) - ms(info["queuedAt"]),
                             ms(info["endedAt"]) - ms(info["queuedAt"]))
    hour = 3600_000
    wait, total = timings[-100]
    assert 100_000 <= wait < 101_000, f"the start should wait 100 s, waited {wait} ms"
    # start +100 s, the sleep's hour (not moved), the step after it +100 s, the last call +100 s
    assert 3 * 100_000 + hour <= total < 3 * 100_000 + hour + 2_000, timings
    for factor in (0, 100):
        wait, total = timings[factor]
        assert wait < 1_000 and hour <= total < hour + 2_000, (factor, timings)
