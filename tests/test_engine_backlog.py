"""The scheduler's backlog under a burst: calls waiting for a concurrency slot.

A burst of 1,000 events behind ``Concurrency(limit=10)`` (notebook 11) leaves about 990 calls
waiting. A release must wake only as many of them as it freed slots for, best priority first,
and never leave a call waiting behind a free slot. Measured here by counting the scheduler's
limit checks (no timings), with a stand-in engine whose calls take a few loop turns; the real
path (SDK -> HTTP -> engine) is exercised by ``test_a_burst_through_the_sdk_...`` below.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import inngest
import pytest

from engine_helpers import make_client, serving, wait_for, wait_run_for_event
from lab_support.devserver.models import Item
from lab_support.devserver.scheduler import Scheduler

pytestmark = pytest.mark.timeout(240)


class _Store:
    def __init__(self) -> None:
        self.items: dict[str, Item] = {}

    def put(self, _kind, key, value) -> None:
        self.items[key] = value

    def delete(self, _kind, key) -> None:
        self.items.pop(key, None)

    def flush(self) -> None:
        pass


class _Clock:
    auto_advance = False
    until_ms = None

    def now_ms(self) -> int:
        return 0


class _StepStats:
    def due(self, item) -> None: ...
    def dropped(self, item_id) -> None: ...
    def started(self, item) -> None: ...
    def ended(self, item) -> None: ...


class _Engine:
    """What the scheduler asks of an engine, for calls with fixed counters and priorities."""

    def __init__(self, counters: dict[str, list[list]], priority: dict[str, int]) -> None:
        self.store, self.clock, self.step_stats = _Store(), _Clock(), _StepStats()
        self._counters, self._priority = counters, priority
        self.checks = 0                      # limit checks made by the scheduler
        self.started: list[str] = []
        self.executing: Counter[str] = Counter()
        self.peaks: Counter[str] = Counter()
        self.executor = self
        self.scheduler: Scheduler | None = None

    def counters(self, item: Item) -> list[list]:
        self.checks += 1
        return self._counters[item.run_id]

    def blocking_counter(self, item: Item) -> str | None:
        for key, limit in self.counters(item):
            if self.scheduler.slots.get(key, 0) >= limit:
                return key
        return None

    def priority_key(self, item: Item) -> int:
        return -self._priority.get(item.run_id, 0) * 1000

    async def execute(self, item: Item) -> None:
        self.started.append(item.run_id)
        keys = [k for k, _ in self._counters[item.run_id]]
        for key in keys:
            self.executing[key] += 1
            self.peaks[key] = max(self.peaks[key], self.executing[key])
        for _ in range(3):
            await asyncio.sleep(0)
        for key in keys:
            self.executing[key] -= 1
        self.store.delete("item", item.id)

    def internal_failure(self, item: Item) -> None:
        raise AssertionError(f"internal failure for {item.id}")


def _drain(engine: _Engine, items: list[Item]) -> None:
    async def main() -> None:
        scheduler = Scheduler(engine)
        engine.scheduler = scheduler
        await scheduler.start()
        try:
            for item in items:
                scheduler.add(item)
            for _ in range(20_000):
                await asyncio.sleep(0.001)
                if len(engine.started) == len(items) and scheduler.idle():
                    return
            raise AssertionError(f"{len(engine.started)} of {len(items)} calls ran; "
                                 f"scheduler: {scheduler.stats()}")
        finally:
            await scheduler.stop()

    asyncio.run(main())


def test_a_burst_of_1000_wakes_a_few_waiting_calls_per_release():
    customers = [f"c-{n % 8}" for n in range(1000)]
    counters = {f"r{n}": [["fn:f", 10], [f"fn:f:customer:{c}", 2]]
                for n, c in enumerate(customers)}
    engine = _Engine(counters, {})
    _drain(engine, [Item(id=f"i{n}", run_id=f"r{n}", kind="call", at=0) for n in range(1000)])
    assert sorted(engine.started, key=lambda r: int(r[1:])) == [f"r{n}" for n in range(1000)]
    assert engine.peaks["fn:f"] == 10
    assert max(v for k, v in engine.peaks.items() if ":customer:" in k) == 2
    # Waking the whole backlog on every release costs about 1,000 x 1,000 / 2 checks; a
    # release that wakes only what fits costs a few per call.
    assert engine.checks < 20 * len(customers), engine.checks


def test_waiting_calls_start_by_priority_then_in_order():
    counters = {f"r{n}": [["fn:f", 1]] for n in range(30)}
    boosted = {f"r{n}": 100 for n in (25, 26, 27)}
    engine = _Engine(counters, boosted)
    _drain(engine, [Item(id=f"i{n}", run_id=f"r{n}", kind="call", at=0) for n in range(30)])
    # All 30 are due at once behind one slot: the boosted three first, then the rest FIFO.
    assert engine.started == (["r25", "r26", "r27"] + [f"r{n}" for n in range(25)]
                              + ["r28", "r29"]), engine.started


def test_a_call_blocked_by_a_second_counter_does_not_hold_back_the_others():
    # Customer a has 1 slot, the function 3: a's waiting calls must not keep b's from the
    # two free function slots.
    runs = [("a", n) for n in range(5)] + [("b", n) for n in range(5)]
    counters = {f"{c}{n}": [["fn:f", 3], [f"fn:f:customer:{c}", 1 if c == "a" else 2]]
                for c, n in runs}
    engine = _Engine(counters, {})
    _drain(engine, [Item(id=f"i-{c}{n}", run_id=f"{c}{n}", kind="call", at=0) for c, n in runs])
    assert sorted(engine.started) == sorted(counters)
    assert engine.peaks["fn:f:customer:a"] == 1 and engine.peaks["fn:f:customer:b"] == 2
    assert engine.peaks["fn:f"] == 3


def test_a_burst_through_the_sdk_keeps_both_caps_and_finishes(fresh_engine):
    client = make_client(fresh_engine, "backlog")
    ran: list[str] = []

    @client.create_function(
        fn_id="reply", trigger=inngest.TriggerEvent(event="c/email"),
        concurrency=[inngest.Concurrency(limit=10),
                     inngest.Concurrency(limit=2, key="event.data.customer_id")])
    async def reply(ctx: inngest.Context) -> str:
        async def draft() -> str:
            ran.append(ctx.event.data["customer_id"])
            return "drafted"
        return await ctx.step.run("draft", draft)

    with serving(fresh_engine, client, [reply]):
        r = httpx.post(fresh_engine.url + "/lab/v1/chaos", timeout=10,
                       json={"function": "reply", "step": "draft", "mode": "slow",
                             "duration": "8s", "times": None})
        assert r.status_code == 200, r.text
        body = [{"name": "c/email", "data": {"customer_id": f"c-{n % 8}"}} for n in range(300)]
        ids = httpx.post(fresh_engine.url + "/e/test", json=body, timeout=30).json()["ids"]
        assert len(ids) == 300
        wait_run_for_event(fresh_engine, ids[-1], timeout=120)
        wait_for(lambda: len(ran) == 300, timeout=120, message="300 drafts")
        stats = httpx.get(fresh_engine.url + "/lab/v1/stats/steps", timeout=30,
                          params={"function": "backlog-reply",
                                  "key": "event.data.customer_id"}).json()
        assert stats["peak"] == 10, stats["peak"]
        assert max(stats["peaks"].values()) == 2, stats["peaks"]
        assert Counter(ran) == {f"c-{n}": 300 // 8 + (1 if n < 300 % 8 else 0) for n in range(8)}
