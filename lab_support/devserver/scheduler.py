"""The queue: timers ordered by engine time, call items ordered by priority, concurrency
slots, workers, and the virtual clock's auto-advance.

* A *timer* is any item with a due time (a sleep's wake-up, a wait timeout, a delayed start,
  a retry). When due, a ``call`` item moves to the ready heap; any other kind fires
  ``engine.on_timer``.
* A ready call needs a worker (at most ``max_workers`` SDK requests in flight, like the dev
  server's queue workers) and a slot in every concurrency counter of its run. Without a slot
  it waits in the backlog of the counter that was full (a heap in priority order); a release
  moves only as many of the best waiting calls to the ready heap as it freed slots for, so a
  burst of 1,000 calls behind a limit of 10 costs a few heap moves per release, not 1,000.
  Nothing is dropped.
* Auto-advance (virtual clock): when nothing is in flight, ready or blocked, the clock jumps
  to the next timer if that timer is *internal* (belongs to a run in progress: a sleep, a
  retry, a delayed start, a debounce/batch window, a function timeout). Cron ticks on the way
  fire as time passes. An open wait/invoke deadline is the outside world's business: the
  clock never jumps to or past one by itself; a request (advance) moves it.
* A *hold* keeps a call's slots until a moment of engine time (``hold``: a slow step, lab
  chaos). When every call in flight is holding, the clock may jump to the earliest release
  (it is work of a run in progress), never past it.
* Every due call, slot taken and slot given back is reported to ``engine.step_stats``, the
  history behind ``lab.stats``.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections import Counter, defaultdict

from . import tiers
from .models import Item

log = logging.getLogger("lab_support.devserver")
FLUSH_EVERY_S = 0.05
PURGE_EVERY = 20            # flushes between two history purges (about 1 s)


class Scheduler:
    def __init__(self, engine, max_workers: int = 100) -> None:
        self.engine = engine
        self.max_workers = max_workers
        self._seq = itertools.count(1)
        self._timers: list[tuple[int, int, str]] = []
        self._ready: list[tuple[int, int, str]] = []
        self.backlog: dict[str, list[tuple[int, int, str]]] = defaultdict(list)   # heaps
        self.in_flight: dict[str, asyncio.Task] = {}
        self.slots: Counter[str] = Counter()
        self._wake: asyncio.Event | None = None
        self._loop_task: asyncio.Task | None = None
        self._flush_task: asyncio.Task | None = None
        self.busy_external = 0      # work outside SDK calls that must finish before a jump
        self.holds: dict[str, tuple[int, asyncio.Future]] = {}   # item id -> (release at, done)

    # -- items -----------------------------------------------------------------------------
    def add(self, item: Item) -> Item:
        item.seq = next(self._seq)
        self.engine.store.put("item", item.id, item)
        heapq.heappush(self._timers, (item.at, item.seq, item.id))
        self.poke()
        return item

    def reschedule(self, item: Item, at: int, *, internal: bool = True) -> None:
        item.at, item.internal = at, internal
        self.add(item)

    def remove(self, item_id: str) -> None:
        self.engine.store.delete("item", item_id)   # heap entries are dropped lazily
        self.engine.step_stats.dropped(item_id)

    def remove_run_items(self, run_id: str) -> None:
        for item in [i for i in self.engine.store.items.values() if i.run_id == run_id]:
            self.remove(item.id)

    def load(self) -> None:
        """After a restart: every stored item goes back on the timer heap."""
        for item in sorted(self.engine.store.items.values(), key=lambda i: (i.at, i.seq)):
            item.seq = next(self._seq)
            item.payload.pop("held", None)   # slots do not survive a restart
            heapq.heappush(self._timers, (item.at, item.seq, item.id))

    def poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    # -- introspection ---------------------------------------------------------------------
    def _live(self, entry: tuple[int, int, str]) -> Item | None:
        item = self.engine.store.items.get(entry[2])
        if item is None or item.seq != entry[1]:
            return None
        return item

    def next_timer(self) -> Item | None:
        while self._timers:
            item = self._live(self._timers[0])
            if item is not None:
                return item
            heapq.heappop(self._timers)
        return None

    def idle(self) -> bool:
        return (not self.in_flight and not self._ready and self.busy_external == 0
                and not any(self.backlog.values()))

    def stats(self) -> dict:
        return {"in_flight": len(self.in_flight), "ready": len(self._ready),
                "blocked": sum(len(v) for v in self.backlog.values()),
                "timers": len(self.engine.store.items), "slots": dict(self.slots)}

    # -- the loop --------------------------------------------------------------------------
    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._loop_task = asyncio.create_task(self._run(), name="lab-scheduler")
        self._flush_task = asyncio.create_task(self._flush_forever(), name="lab-flush")

    async def stop(self) -> None:
        for task in (self._loop_task, self._flush_task, *self.in_flight.values()):
            if task is not None:
                task.cancel()
        for task in (self._loop_task, self._flush_task, *self.in_flight.values()):
            if task is not None:
                try:
                    await asyncio.wait_for(task, 5)
                except (asyncio.CancelledError, asyncio.TimeoutError, Exception):
                    pass
        self.in_flight.clear()
        self.engine.store.flush()

    async def _flush_forever(self) -> None:
        for beat in itertools.count(1):
            await asyncio.sleep(FLUSH_EVERY_S)
            try:
                if beat % PURGE_EVERY == 0:
                    tiers.purge_history(self.engine)    # a plan's history window, if any
                await self.engine.store.flush_in_background()
            except Exception:  # a full disk must not stop the engine; say so
                log.exception("could not persist engine state")

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            self._wake.clear()
            try:
                delay = self._tick()
            except Exception:
                log.exception("scheduler tick failed")
                delay = 0.1
            if delay == 0:
                await asyncio.sleep(0)
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except asyncio.TimeoutError:
                pass

    def run_due(self) -> None:
        """Fire every timer that is due now and dispatch ready calls (no clock jump)."""
        now = self.engine.clock.now_ms()
        while self._timers and self._timers[0][0] <= now:
            entry = heapq.heappop(self._timers)
            item = self._live(entry)
            if item is None:
                continue
            if item.kind == "call":
                heapq.heappush(self._ready, (self.engine.priority_key(item), item.seq, item.id))
                self.engine.step_stats.due(item)
            else:
                self.remove(item.id)
                self.engine.on_timer(item)
        for at, done in self.holds.values():
            if at <= now and not done.done():
                done.set_result(None)
        self._dispatch()

    def _tick(self) -> float | None:
        """Do all due work; return how long to sleep (None: until poked)."""
        clock = self.engine.clock
        self.run_due()
        nxt = self.next_timer()
        hold_at = min((at for at, done in self.holds.values() if not done.done()), default=None)
        if nxt is None and hold_at is None:
            return None
        target = self._jump_target(nxt, hold_at) if clock.auto_advance else None
        if (target is not None and target > clock.now_ms()
                and (clock.until_ms is None or target <= clock.until_ms)):
            clock.advance_to(target)
            self.engine.clock_moved()
            return 0
        due = min(at for at in (nxt.at if nxt else None, hold_at) if at is not None)
        return max(0.0, (due - clock.now_ms()) / 1000.0)

    def _jump_target(self, nxt: Item | None, hold_at: int | None) -> int | None:
        """Where auto-advance may jump now, if anywhere."""
        if hold_at is None:
            return nxt.at if nxt is not None and self.idle() and self._may_jump_to(nxt) else None
        # Slow steps hold their slots: a jump is safe only when nothing but holds is in flight
        # (queued calls then wait for those slots), and it stops at the first release.
        if self.busy_external or not self.in_flight or any(
                self.holds.get(i) is None or self.holds[i][1].done() for i in self.in_flight):
            return None
        if nxt is not None and nxt.at < hold_at:
            return nxt.at if self._may_jump_to(nxt, hold_at) else None
        return hold_at

    def _may_jump_to(self, nxt: Item, hold_at: int | None = None) -> bool:
        """Internal timers: yes. A cron tick: only on the way to a run's internal timer
        (time passing for a sleeping run also passes for the schedule). An open deadline of
        the outside world (a wait or invoke timeout): never by itself."""
        if nxt.internal:
            return True
        if nxt.kind != "cron":
            return False
        first_internal = min([i.at for i in self.engine.store.items.values() if i.internal]
                             + ([hold_at] if hold_at is not None else []), default=None)
        if first_internal is None:
            return False
        first_blocking = min((i.at for i in self.engine.store.items.values()
                              if not i.internal and i.kind != "cron"), default=None)
        return first_blocking is None or first_internal < first_blocking

    def _dispatch(self) -> None:
        while self._ready and len(self.in_flight) < self.max_workers:
            entry = heapq.heappop(self._ready)
            item = self._live(entry)
            if item is None:
                continue
            full = self.engine.blocking_counter(item)
            if full is not None:
                heapq.heappush(self.backlog[full], entry)
                continue
            self._acquire(item)
            self.in_flight[item.id] = asyncio.create_task(self._work(item))

    def _acquire(self, item: Item) -> None:
        held = [key for key, _limit in self.engine.counters(item)]
        for key in held:
            self.slots[key] += 1
        item.payload["held"] = held
        item.started_ms = self.engine.clock.now_ms()
        self.engine.step_stats.started(item)

    async def hold(self, item: Item, until_ms: int) -> None:
        """Keep ``item``'s slots (the caller is its in-flight task) until engine time
        ``until_ms``: the virtual clock may jump there, never past it."""
        if until_ms <= self.engine.clock.now_ms():
            return
        done = asyncio.get_running_loop().create_future()
        self.holds[item.id] = (until_ms, done)
        self.poke()
        try:
            await done
        finally:
            self.holds.pop(item.id, None)

    def requeue_blocked(self) -> None:
        """Give every call waiting for a slot another try (the limits themselves changed)."""
        for key in list(self.backlog):
            for entry in self.backlog.pop(key, []):
                heapq.heappush(self._ready, entry)    # _dispatch drops stale entries
        self.poke()

    def release(self, item: Item) -> None:
        self.engine.step_stats.ended(item)
        held = item.payload.pop("held", [])
        for key in held:
            self.slots[key] -= 1
            if self.slots[key] <= 0:
                del self.slots[key]
        self._wake_waiting(held, dict(map(tuple, self.engine.counters(item))))
        self.poke()

    def _wake_waiting(self, keys: list[str], limits: dict[str, int]) -> None:
        """After a release of ``keys``: move the best waiting calls of those counters (in
        priority order across them) to the ready heap, as many as the freed slots can take.
        A call that another counter blocks moves to that counter's backlog, to be woken by
        its release; nothing waits behind a free slot for long."""
        free = {}
        for key in keys:
            if key in limits:
                free[key] = limits[key] - self.slots.get(key, 0)
            else:        # the limit changed since the call took its slot: let all try again
                for entry in self.backlog.pop(key, []):
                    heapq.heappush(self._ready, entry)
        taken: Counter[str] = Counter()      # slots promised to calls moved to ready
        deferred: list[tuple[str, tuple[int, int, str]]] = []
        while True:
            heads = [(self.backlog[k][0], k) for k in free
                     if taken[k] < free[k] and self.backlog.get(k)]
            if not heads:
                break
            entry, key = min(heads)
            heapq.heappop(self.backlog[key])
            waiting = self._live(entry)
            if waiting is None:
                continue
            counters = self.engine.counters(waiting)
            full = next((k for k, limit in counters
                         if self.slots.get(k, 0) + taken[k] >= limit), None)
            if full is None:
                heapq.heappush(self._ready, entry)
                for k, _limit in counters:
                    taken[k] += 1
            elif full in free:
                deferred.append((full, entry))      # back after the scan (no endless loop)
            else:
                heapq.heappush(self.backlog[full], entry)
        for key, entry in deferred:
            heapq.heappush(self.backlog[key], entry)
        for key in free:
            if not self.backlog.get(key):
                self.backlog.pop(key, None)

    async def _work(self, item: Item) -> None:
        try:
            await self.engine.executor.execute(item)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("executing %s failed", item.id)
            self.engine.internal_failure(item)
        finally:
            self.in_flight.pop(item.id, None)
            self.release(item)
