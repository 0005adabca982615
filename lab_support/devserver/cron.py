"""Cron triggers on the engine clock, parsed and stepped the way the real server does.

The server validates and schedules crons with robfig/cron (v3) and a five-field parser, so
this module follows that library's rules rather than croniter's:

* an optional ``TZ=Area/City `` or ``CRON_TZ=Area/City `` prefix names the time zone the
  fields are read in (IANA names, via ``zoneinfo``); without one the fields are UTC;
* exactly five fields: minute, hour, day of month, month (1-12 or JAN-DEC), day of week
  (0-6 or SUN-SAT; 7 is *not* Sunday); ``*`` or ``?``, ``a-b``, ``a-b/n``, ``a/n``
  (= a-max/n), lists; no ``@daily``-style descriptors, no ``L``/``W``/``#``;
* day of month and day of week: if either starts with ``*`` (``*/n`` with n > 1 does not
  count) both must match, otherwise either may;
* the next tick is the first whole minute after "now" whose wall time in the zone matches,
  in absolute time: a wall time skipped by a DST jump does not fire that day, and one that a
  DST fall-back repeats fires at both instants.

Each tick is the real scheduled event: name ``inngest/scheduled.timer``, id = the scheduled
time (RFC 3339, UTC), data ``{cron, scheduledAt, fireAt}``. The run is scheduled directly
and deduplicated by that id. A trigger's ``jitter`` (1 s to 5 min) delays each firing by a
deterministic per-slot offset between 1 s and the jitter, as the server does: ``scheduledAt``
stays the slot, ``fireAt`` is the later moment.
"""

from __future__ import annotations

import functools
import re
import zlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .durations import DurationError, go_duration, parse_duration_ms

CRON_EVENT = "inngest/scheduled.timer"
MAX_CATCH_UP = 100
SEARCH_YEARS = 5            # robfig gives up after five years without a match
MONTHS = {m: i + 1 for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))}
DAYS = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
# name, lowest, highest, names
FIELDS = (("minute", 0, 59, None), ("hour", 0, 23, None), ("day of month", 1, 31, None),
          ("month", 1, 12, MONTHS), ("day of week", 0, 6, DAYS))
_NUMBER = re.compile(r"^\d+$")
MIN_JITTER_MS, MAX_JITTER_MS = 1_000, 300_000
SLACK = timedelta(hours=3)


class CronError(ValueError):
    pass


@dataclass(frozen=True)
class Schedule:
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]     # 0 = Sunday
    either_day: bool             # neither day field starts with '*': one match is enough
    zone: timezone | ZoneInfo

    def day_matches(self, day: date) -> bool:
        dom, dow = day.day in self.days, (day.isoweekday() % 7) in self.weekdays
        return (dom or dow) if self.either_day else (dom and dow)


@functools.lru_cache(maxsize=512)
def parse(expr: str) -> Schedule:
    """The schedule of a cron expression, or CronError with the reason."""
    spec = expr or ""
    if not spec:
        raise CronError("empty spec string")
    zone: timezone | ZoneInfo = timezone.utc
    if spec.startswith(("TZ=", "CRON_TZ=")):
        head, sep, rest = spec.partition(" ")
        name = head.partition("=")[2]
        if not sep or not name:
            raise CronError(f"a time zone prefix needs a schedule after it: {expr!r}")
        try:
            zone = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise CronError(f"provided bad location {name}: unknown time zone {name}") from None
        spec = rest.strip()
    if spec.startswith("@"):
        raise CronError(f"parser does not accept descriptors: {spec}")
    parts = spec.split()
    if len(parts) != 5:
        raise CronError(f"expected exactly 5 fields, found {len(parts)}: {parts}")
    values, stars = [], []
    for text, (name, low, high, names) in zip(parts, FIELDS):
        allowed, star = _field(text, name, low, high, names)
        values.append(allowed)
        stars.append(star)
    return Schedule(minutes=tuple(sorted(values[0])), hours=tuple(sorted(values[1])),
                    days=frozenset(values[2]), months=frozenset(values[3]),
                    weekdays=frozenset(values[4]), either_day=not (stars[2] or stars[4]),
                    zone=zone)


def _field(text: str, name: str, low: int, high: int, names) -> tuple[set[int], bool]:
    allowed: set[int] = set()
    star = False
    for part in (p for p in text.split(",") if p):
        span, _, step_text = part.partition("/")
        if "/" in step_text:
            raise CronError(f"too many slashes: {part}")
        if span in ("*", "?"):
            start, end, part_star = low, high, True
        else:
            bounds = span.split("-")
            if len(bounds) > 2:
                raise CronError(f"too many hyphens: {part}")
            start = _number(bounds[0], names, part)
            end = _number(bounds[1], names, part) if len(bounds) == 2 else start
            if step_text and len(bounds) == 1:
                end = high                      # "a/n" means "a-max/n"
            part_star = False
        step = _number(step_text, None, part) if step_text else 1
        if step > 1:
            part_star = False
        if start < low:
            raise CronError(f"beginning of range ({start}) below minimum ({low}): {part}")
        if end > high:
            raise CronError(f"end of range ({end}) above maximum ({high}): {part}")
        if start > end:
            raise CronError(f"beginning of range ({start}) beyond end of range ({end}): {part}")
        if step == 0:
            raise CronError(f"step of range should be a positive number: {part}")
        allowed.update(range(start, end + 1, step))
        star = star or part_star
    if not allowed:
        raise CronError(f"the {name} field is empty")
    return allowed, star


def _number(text: str, names, part: str) -> int:
    if names and text.lower() in names:
        return names[text.lower()]
    if not _NUMBER.match(text):
        raise CronError(f"failed to parse int from {text}: {part}")
    return int(text)


def validate(expr: str) -> str | None:
    """The server's sync error for an invalid cron, with the reason; None when valid."""
    try:
        parse(expr)
    except CronError as exc:
        return f"invalid cron: {expr!r} isn't a valid cron schedule ({exc})"
    return None


def jitter_problem(jitter: str | None) -> str | None:
    """The server's sync error for a bad ``jitter``; None when it is fine (or absent)."""
    if jitter is None or not str(jitter).strip():
        return None
    try:
        ms = parse_duration_ms(jitter)
    except DurationError:
        return f"'{jitter}' isn't a valid jitter duration"
    if 0 < ms < MIN_JITTER_MS:
        return f"cron jitter must be at least {go_duration(MIN_JITTER_MS)}"
    if ms > MAX_JITTER_MS:
        return f"cron jitter must be less than or equal to {go_duration(MAX_JITTER_MS)}"
    return None


def jitter_offset_ms(jitter: str | None, seed: str) -> int:
    """A fixed offset in [1 s, jitter) for one slot (0 without jitter)."""
    if jitter_problem(jitter) is not None or not jitter:
        return 0
    span = parse_duration_ms(jitter)
    if span <= MIN_JITTER_MS:
        return MIN_JITTER_MS if span else 0
    return MIN_JITTER_MS + zlib.crc32(seed.encode()) % (span - MIN_JITTER_MS)


def next_tick_ms(expr: str, after_ms: int) -> int:
    """The first tick strictly after ``after_ms`` (engine ms), as engine ms."""
    schedule = parse(expr)
    after = datetime.fromtimestamp(after_ms / 1000, tz=timezone.utc)
    zone = schedule.zone
    wall_now = after.astimezone(zone).replace(tzinfo=None)
    # Wall times are scanned in order. Only near a DST change can a later wall time sit at an
    # earlier instant (a fall-back repeats an hour), so only there the scan starts a little
    # before "now" and looks a little past the first match (3 h covers every zone's shift).
    near_change = zone.utcoffset(wall_now - SLACK) != zone.utcoffset(wall_now + SLACK)
    slack = SLACK if near_change else None
    best: datetime | None = None
    best_wall: datetime | None = None
    floor = wall_now - slack if slack else wall_now.replace(second=0, microsecond=0)
    day = floor.date()
    for _ in range(366 * SEARCH_YEARS + 2):
        if day.month in schedule.months and schedule.day_matches(day):
            for hour in schedule.hours:
                for minute in schedule.minutes:
                    wall = datetime(day.year, day.month, day.day, hour, minute)
                    if wall < floor:
                        continue
                    if best_wall is not None and (slack is None or wall > best_wall + slack):
                        return int(best.timestamp() * 1000)
                    for instant in _instants(day, hour, minute, zone):
                        if instant > after and (best is None or instant < best):
                            best, best_wall = instant, wall
        day += timedelta(days=1)
    if best is None:
        raise CronError(f"{expr!r} never fires in the next {SEARCH_YEARS} years")
    return int(best.timestamp() * 1000)


def _instants(day: date, hour: int, minute: int, zone) -> list[datetime]:
    """The absolute instants showing this wall time in the zone: none inside a DST gap,
    two inside a fall-back repeat, else one."""
    out = []
    for fold in (0, 1):
        local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone, fold=fold)
        instant = local.astimezone(timezone.utc)
        back = instant.astimezone(zone)
        if (back.hour, back.minute, back.date()) == (hour, minute, day) and instant not in out:
            out.append(instant)
    return out


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


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
                    self._schedule(fn.slug, trigger["cron"], now, jitter=trigger.get("jitter"))

    def _schedule(self, slug: str, expr: str, after_ms: int, caught_up: int = 0,
                  jitter: str | None = None) -> None:
        try:
            at = next_tick_ms(expr, after_ms)
        except CronError:
            return                              # never fires (e.g. 31 Feb); sync said valid
        fire_at = at + jitter_offset_ms(jitter, f"{slug}:{expr}:{at}")
        self.engine.timer("cron", "", fire_at, internal=False,
                          payload={"function": slug, "cron": expr, "scheduled": at,
                                   "caught_up": caught_up, "jitter": jitter})

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
        try:
            following = next_tick_ms(expr, scheduled if catch_up else max(scheduled, now))
        except CronError:
            following = None
        if following is not None:
            self._schedule(slug, expr, following - 1,
                           caught_up=caught_up + 1 if following <= now else 0,
                           jitter=item.payload.get("jitter"))
        # fireAt is the planned firing (the slot plus any jitter), as the server computes it,
        # also when a clock jump reaches it late.
        event = engine.record_event(
            CRON_EVENT, {"cron": expr, "scheduledAt": _iso(scheduled), "fireAt": _iso(item.at)},
            event_id=_iso(scheduled))
        if engine.first_in_a_day(fn, event):
            engine.create_run(fn, [event], cron=expr)
