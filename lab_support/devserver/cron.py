"""Cron triggers on the engine clock (croniter, UTC), with the real scheduled-event shape:
name ``inngest/scheduled.timer``, id = the scheduled time (RFC 3339), data
``{cron, scheduledAt, fireAt}``. The run is scheduled directly and deduplicated by that id."""

from __future__ import annotations

from datetime import datetime, timezone

from croniter import croniter


CRON_EVENT = "inngest/scheduled.timer"
MAX_CATCH_UP = 100


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def next_tick_ms(expr: str, after_ms: int) -> int:
    base = datetime.fromtimestamp(after_ms / 1000, tz=timezone.utc)
    return int(croniter(expr, base).get_next(datetime).timestamp() * 1000)


class CronTicker:
    def __init__(self, engine) -> None:
        self.engine = engine

    def schedule_all(self) -> None:
        engine = self.engine
        for item in [i for i in engine.store.items.values() if i.kind == "cron"]:
            engine.scheduler.remove(item.id)
        now = engine.now()
        for fn in engine.store.functions.values():
            for trigger in fn.triggers:
                if trigger.get("cron"):
                    self._schedule(fn.slug, trigger["cron"], now)

    def _schedule(self, slug: str, expr: str, after_ms: int, caught_up: int = 0) -> None:
        at = next_tick_ms(expr, after_ms)
        self.engine.timer("cron", "", at, internal=False,
                          payload={"function": slug, "cron": expr, "scheduled": at,
                                   "caught_up": caught_up})

    def fire(self, item) -> None:
        engine = self.engine
        slug, expr, scheduled = (item.payload["function"], item.payload["cron"],
                                 item.payload["scheduled"])
        fn = engine.store.functions.get(slug)
        if fn is None or not any(t.get("cron") == expr for t in fn.triggers):
            return                                  # the cron was removed by a re-sync
        now = engine.now()
        # Virtual time passes through every moment of a jump, so each tick in the window fires
        # (a 3-day advance sees three 09:00 runs). Real-clock downtime is not replayed, and a
        # jump never fires more than MAX_CATCH_UP ticks of one cron.
        caught_up = item.payload.get("caught_up", 0)
        catch_up = engine.clock.mode == "virtual" and caught_up < MAX_CATCH_UP
        following = next_tick_ms(expr, scheduled if catch_up else max(scheduled, now))
        self._schedule(slug, expr, following - 1,
                       caught_up=caught_up + 1 if following <= now else 0)
        event = engine.record_event(
            CRON_EVENT, {"cron": expr, "scheduledAt": _iso(scheduled), "fireAt": _iso(now)},
            event_id=_iso(scheduled))
        if engine.first_in_a_day(fn, event):
            engine.create_run(fn, [event], cron=expr)
