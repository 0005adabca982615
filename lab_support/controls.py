"""``lab.clock`` (the engine's virtual clock) and ``lab.chaos`` (fault injection).

On the embedded engine both are the engine's own (``/lab/v1/clock``, ``/lab/v1/chaos``).
A real dev server has neither, so there each has a real-server equivalent, announced in the
notebook when it acts:

* ``lab.chaos``: the same rules, applied by the lab's function host (``host_faults``), so a
  step fails, its answer is lost or its call is slow on any server.
* ``lab.clock.advance`` / ``to_next_timer``: the lab keeps a schedule cursor (wall time until
  moved) and fires every cron tick of the served functions that falls in the window, by
  invoking the function with the data a cron run carries (``cron``, ``scheduledAt``,
  ``fireAt``), then waits (bounded) until the runs they started, and their fan-out, are
  finished. Sleeps, retries and waits still take their real time (write ``lab.hours``).
  With no cron function to fire they raise ``NotOnRealServer``, as ``auto`` always does.
"""

from __future__ import annotations

import html
import re
import time
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import httpx

from .client import LabClientError, NotOnRealServer, parse_time, to_rfc3339
from .display import show

if TYPE_CHECKING:
    from .lab_object import Lab

CHAOS_MODES = ("raise", "http_503", "timeout", "lose_response")   # fail_step's; slow_step below
CHAOS_SCOPES = ("run", "any")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_REAL_TICKS = 60  # cron ticks one real-server advance may fire
# After firing ticks on a real server: wait (bounded) until the runs they started, and the runs
# those started, are listed and finished, as the embedded engine's advance has them at once.
SETTLE_QUIET_S = 1.5
SETTLE_TIMEOUT_S = 60.0


def real_server_notice(text: str) -> None:
    """A visible line saying what the lab did instead of an embedded-engine feature."""
    show(text=f"[real dev server] {text}",
         html_text=("<div class='lab-real-notice' style='border-left:4px solid #bf8700;"
                    "padding:4px 10px;margin:4px 0;font-family:sans-serif'>"
                    f"<b>real dev server</b> &mdash; {html.escape(text)}</div>"))


def _crons_of(fn) -> list[str]:
    return [t.cron for t in getattr(fn, "_triggers", []) if getattr(t, "cron", None)]


def next_cron_ticks(functions: list, after: datetime) -> list[tuple[datetime, Any, str]]:
    """The next tick of every cron trigger after ``after``, earliest first."""
    import croniter

    ticks = [(croniter.croniter(expression, after).get_next(datetime), fn, expression)
             for fn in functions for expression in _crons_of(fn)]
    return sorted(ticks, key=lambda t: (t[0], t[1].id))


def cron_ticks(functions: list, after: datetime, until: datetime) -> list[tuple[datetime, Any, str]]:
    """(tick, function, cron) for every cron trigger tick in (after, until], in time order."""
    import croniter

    ticks = []
    for fn in functions:
        for expression in _crons_of(fn):
            it = croniter.croniter(expression, after)
            while (tick := it.get_next(datetime)) <= until:
                ticks.append((tick, fn, expression))
                if len(ticks) > MAX_REAL_TICKS:
                    raise ValueError(f"More than {MAX_REAL_TICKS} cron ticks fall in that "
                                     "window; on a real dev server each is a real run: "
                                     "advance by less.")
    return sorted(ticks, key=lambda t: (t[0], t[1].id))


def to_seconds(value: Any) -> float:
    """timedelta, number of seconds, or text like '4h', '90s', '2d' → seconds."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _UNIT_S[m.group(2)]
    else:
        raise ValueError(f"Cannot read {value!r} as a duration: use a timedelta, a number of "
                         "seconds, or text like '4h', '30m', '2d'.")
    if seconds < 0:
        raise ValueError(f"A duration cannot be negative ({value!r}).")
    return seconds


class Clock:
    """The engine's clock. Virtual by default: sleeps, retry backoffs and timeouts elapse
    when nothing else is due (auto-advance), or when you move time with ``advance``.
    Cron ticks and open waits for events are reached only by advancing explicitly."""

    def __init__(self, lab: "Lab") -> None:
        self._lab = lab
        self._cursor: datetime | None = None  # real server: the last tick the lab fired
        # Real server: (wall time an advance began, wall time it ended, the cursor after it),
        # so a lab time such as ``since=lab.clock.now()`` taken after an advance can be matched
        # to the server's wall-clock run times (server_time).
        self._jumps: list[tuple[datetime, datetime, datetime]] = []

    def _api(self):
        return self._lab._require_engine()

    def info(self) -> dict:
        return self._api().lab_get("clock", "The virtual clock (lab.clock)")

    def now(self) -> datetime:
        """The engine's current time. On a real dev server: wall time, or the lab's
        schedule cursor once ``advance`` moved it ahead."""
        api = self._api()
        if api.kind != "embedded":
            wall = datetime.now(timezone.utc)
            return max(wall, self._cursor) if self._cursor else wall
        return parse_time(self.info()["now"])

    def server_time(self, when: Any, *, strict: bool = False) -> Any:
        """The server's time for a lab time. The embedded engine keeps one clock, so it is
        ``when`` itself. On a real server the lab's time runs ahead of the server's wall clock
        after an advance, so a lab time maps to the wall-clock moment the lab reached it: the
        end of the advance that landed exactly on it (its ticks are earlier), else the start
        of the advance that jumped past it. ``strict`` (a window's end): the moment the lab
        passed it."""
        if not self._jumps or not isinstance(when, datetime) or when.tzinfo is None:
            return when
        for began, ended, cursor in self._jumps:
            if cursor > when or (cursor == when and not strict):
                return min(when, ended if cursor == when else began)
        return when

    def advance(self, duration: Any = None, *, to: datetime | str | None = None) -> dict:
        """Move time forward by ``duration`` (timedelta, seconds, '4h') or to ``to``;
        timers that fall due start their work before this returns."""
        if (duration is None) == (to is None):
            raise ValueError("Give either a duration (lab.clock.advance('4h')) or to=<time>.")
        if self._api().kind != "embedded":
            start = self.now()
            until = parse_time(to_rfc3339(to)) if to is not None \
                else start + timedelta(seconds=to_seconds(duration))
            return self._fire_real(cron_ticks(self._crons("lab.clock.advance"), start, until),
                                   until)
        body = {"to": to_rfc3339(to)} if to is not None else {"seconds": to_seconds(duration)}
        return self._api().lab_call("POST", "clock/advance", "lab.clock.advance", body)

    def to_next_timer(self) -> dict:
        """Jump to the next pending timer of any kind (sleep, wait timeout, cron tick...)."""
        if self._api().kind != "embedded":
            functions, start = self._crons("lab.clock.to_next_timer"), self.now()
            ticks = next_cron_ticks(functions, start)
            first = [t for t in ticks if t[0] == ticks[0][0]] if ticks else []
            return self._fire_real(first, first[0][0] if first else start)
        return self._api().lab_call("POST", "clock/advance", "lab.clock.to_next_timer",
                                    {"to_next_timer": True})

    def move_cursor(self, to: datetime | str) -> dict:
        """Real dev server: start the lab's schedule cursor at ``to`` without firing anything
        (a story that begins at 06:00 before its cron is served). ``lab.clock.now()``, and the
        Worker's clock under ``lab.start(app=...)``, read it from then on. On the embedded
        engine this is ``advance(to=...)``."""
        if self._api().kind == "embedded":
            return self.advance(to=to)
        until = parse_time(to_rfc3339(to))
        self._cursor = max(self._cursor or until, until)
        wall = datetime.now(timezone.utc)
        self._jumps.append((wall, wall, self._cursor))  # later lab times map to wall from here
        real_server_notice(
            f"no virtual clock here: the lab's schedule cursor starts at "
            f"{to_rfc3339(self._cursor)} (lab.clock.now() and the Worker's clock read it; "
            "nothing fired). Sleeps, retries and waits keep wall-clock time.")
        return {"mode": "real", "now": to_rfc3339(self._cursor), "fired": []}

    def _crons(self, feature: str) -> list:
        functions = [fn for fn in self._lab.functions if _crons_of(fn)]
        if not functions:
            raise NotOnRealServer(
                f"{feature}: a real Inngest dev server runs on wall-clock time, and the lab "
                "can stand in for its clock only by firing cron ticks, but no served function "
                "has a cron trigger. Use lab.hours(...) / lab.minutes(...) for sleeps and "
                "timeouts that must finish on a real server.")
        return functions

    def _fire_real(self, ticks: list, until: datetime) -> dict:
        api = self._api()
        fired = []
        wall = datetime.now(timezone.utc)
        since = wall - timedelta(seconds=2)
        for tick, fn, expression in ticks:
            when = to_rfc3339(tick.astimezone(timezone.utc).replace(microsecond=0))
            if not api.invoke(fn.id, {"cron": expression, "scheduledAt": when, "fireAt": when}):
                raise LabClientError(f"The server refused to invoke {fn.id} for its {when} tick.")
            fired.append({"function": fn.id, "scheduledAt": when})
        self._cursor = max(self._cursor or until, until)
        settled = self._settle(since, len(fired)) if fired else True
        self._jumps.append((wall, datetime.now(timezone.utc), self._cursor))
        names = ", ".join(f"{f['function']} @ {f['scheduledAt']}" for f in fired) or "none"
        real_server_notice(
            f"no virtual clock here: the lab moved its schedule cursor to "
            f"{to_rfc3339(self._cursor)} and fired {len(fired)} cron tick(s) by invoking the "
            f"function with the tick's data ({names})"
            + ("" if settled else f"; some runs were still going after {SETTLE_TIMEOUT_S:.0f} s")
            + ". Sleeps, retries and waits keep wall-clock time.")
        return {"mode": "real", "now": to_rfc3339(self._cursor), "fired": fired}

    def _settle(self, since: datetime, at_least: int) -> bool:
        """Until this app's runs since ``since`` number ``at_least``, are all finished and
        none has been added for ``SETTLE_QUIET_S``; False when that takes too long."""
        from .runs import is_terminal

        api = self._api()
        fn_ids = [api.function_id(fn.id) for fn in self._lab.functions]
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        seen: set[str] = set()
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            runs = api.runs(function_ids=fn_ids, since=since)
            ids = {r["id"] for r in runs}
            if ids != seen:
                seen, quiet_since = ids, time.monotonic()
            elif len(ids) >= at_least and all(is_terminal(r) for r in runs) \
                    and time.monotonic() - quiet_since >= SETTLE_QUIET_S:
                return True
            time.sleep(0.25)
        return False

    def auto(self, enabled: bool = True, until: datetime | str | None = None) -> dict:
        """Turn auto-advance on or off (``until`` bounds how far it may jump)."""
        return self._api().lab_call("POST", "clock/auto", "lab.clock.auto",
                                    {"enabled": bool(enabled), "until": to_rfc3339(until)})

    def __repr__(self) -> str:
        doc = " ".join((self.__doc__ or "").split())
        try:
            info = self.info()
            state = (f"mode={info.get('mode')} now={info.get('now')} "
                     f"auto_advance={info.get('auto_advance')} next_timer={info.get('next_timer')}")
        except Exception as exc:  # repr must never raise in a notebook
            state = f"({exc})"
        return f"lab.clock: {doc}\n  {state}"


class Chaos:
    """Fault injection: make a chosen step of a function fail its next ``times`` attempts.
    Modes: raise (the step errors before its body runs), http_503 and timeout (the call to
    your host fails), lose_response (the body runs, then its answer is dropped, so the step
    runs again: the side-effect window). ``slow_step`` makes a step take a while while it
    holds its concurrency slot. The embedded engine applies the rules itself (slow steps on
    its clock); on a real dev server the lab's function host applies them (host_faults.py;
    a slow step takes that long in real time, and rules spread over runs until used up).
    A failure rule never leaks into a run you did not mean: it belongs to the first run that
    reaches the step; in a notebook, one no run reached by the end of its cell is removed
    (keep=True arms one for a later cell); lab.start, lab.update and lab.reset clear them.
    A slow_step rule models the work itself: it stays until clear() or lab.reset()."""

    def __init__(self, lab: "Lab") -> None:
        self._lab = lab
        self._armed_in_cell: list[str] = []
        self._hooked = False

    def _api(self):
        return self._lab._require_engine()

    def _on_host(self) -> bool:
        return self._api().kind != "embedded"

    def _host_call(self, method: str, body: dict | None = None) -> Any:
        host = self._lab._host
        if host is None:
            raise RuntimeError("No function host is running: call lab.start(functions) first.")
        try:
            resp = httpx.request(method, host.faults_url, json=body, timeout=10)
        except httpx.HTTPError as exc:
            raise LabClientError(f"The function host did not answer at {host.faults_url}: "
                                 f"{exc}") from exc
        answer = resp.json() if resp.content else {}
        if resp.status_code >= 400:
            raise ValueError(answer.get("error", resp.text[:200]))
        return answer

    def fail_step(self, function: Any, step: str, times: int = 1, mode: str = "raise", *,
                  scope: str = "run", keep: bool = False) -> dict:
        """Fail ``step`` of ``function`` ``times`` times. ``scope="run"``: the failures go to
        the first run that reaches the step; ``"any"``: spread over runs until used up."""
        if mode not in CHAOS_MODES:
            raise ValueError(f"mode must be one of {CHAOS_MODES}, not {mode!r}")
        if scope not in CHAOS_SCOPES:
            raise ValueError(f"scope must be one of {CHAOS_SCOPES}, not {scope!r}")
        if not isinstance(times, int) or times < 1:
            raise ValueError(f"times must be a whole number >= 1, got {times!r}")
        if not step or not isinstance(step, str):
            raise ValueError("step is the step id you gave ctx.step.run, e.g. 'charge-card'")
        slug = self._lab._slug(function)
        body = {"function": slug, "step": step, "times": times, "mode": mode}
        if self._on_host():
            rule = self._host_call("POST", body)
            real_server_notice(
                f"chaos rule set in the lab's function host (the server has no fault "
                f"injection): the next {times} call(s) of step {step!r} in {slug} "
                f"{_MODE_WORDS[mode]}.")
            return rule
        rule = self._api().lab_call("POST", "chaos", "lab.chaos", {**body, "scope": scope})
        if not keep:
            self._remove_at_end_of_cell(rule)
        return rule

    def http_503(self, function: Any, step: str, times: int = 1, **kwargs) -> dict:
        return self.fail_step(function, step, times, mode="http_503", **kwargs)

    def timeout(self, function: Any, step: str, times: int = 1, **kwargs) -> dict:
        return self.fail_step(function, step, times, mode="timeout", **kwargs)

    def lose_response(self, function: Any, step: str, times: int = 1, **kwargs) -> dict:
        return self.fail_step(function, step, times, mode="lose_response", **kwargs)

    def slow_step(self, function: Any, step: str, duration: Any, times: int | None = None) -> dict:
        """Make ``step`` take ``duration`` of *engine* time (timedelta, seconds or '8s') while
        it keeps its concurrency slot: "each email takes 8 s" without time.sleep, and without
        a step.sleep (which would free the slot). The body runs once, at the start; its result
        arrives ``duration`` later. The virtual clock may jump to that moment (it is work of a
        run in progress), never past it. ``times=None``: every call until ``clear()``."""
        seconds = to_seconds(duration)
        if seconds <= 0:
            raise ValueError("duration must be more than zero, e.g. '8s'")
        if times is not None and (not isinstance(times, int) or times < 1):
            raise ValueError(f"times is a whole number >= 1, or None for every call; got {times!r}")
        if not step or not isinstance(step, str):
            raise ValueError("step is the step id you gave ctx.step.run, e.g. 'send-email'")
        slug = self._lab._slug(function)
        body = {"function": slug, "step": step, "times": times, "mode": "slow",
                "duration": seconds}
        if self._on_host():
            rule = self._host_call("POST", body)
            real_server_notice(
                f"slow step set in the lab's function host: step {step!r} in {slug} answers "
                f"{seconds:g} real seconds after its body ran, "
                + ("on every call." if times is None else f"on the next {times} call(s)."))
            return rule
        return self._api().lab_call("POST", "chaos", "lab.chaos.slow_step", body)

    def rules(self) -> list[dict]:
        if self._on_host():
            return self._host_call("GET")["rules"]
        body = self._api().lab_get("chaos", "lab.chaos")
        return body.get("data", body) if isinstance(body, dict) else body

    def clear(self) -> None:
        self._armed_in_cell.clear()
        if self._on_host():
            self._host_call("DELETE")
            return
        self._api().lab_call("DELETE", "chaos", "lab.chaos")

    def clear_leftovers(self) -> list[dict]:
        """Remove every failure rule with failures left (lab.start / lab.update call this,
        so new code starts without faults armed for the old one; slow_step rules, a model of
        the work, stay). Returns the removed rules."""
        api = self._lab.api
        if api is None or api.kind != "embedded":
            return []
        left = [r for r in self.rules() if r.get("mode") != "slow"
                and (r.get("remaining") is None or r.get("remaining", 0) > 0)]
        for rule in left:
            self._api().lab_call("DELETE", f"chaos/{rule['id']}", "lab.chaos")
        return left

    # -- a rule armed in a cell ends with that cell unless a run used it ------------------
    def _remove_at_end_of_cell(self, rule: dict) -> None:
        try:
            from IPython import get_ipython
        except ImportError:
            return
        shell = get_ipython()
        if shell is None or not rule.get("id"):
            return
        self._armed_in_cell.append(rule["id"])
        if not self._hooked:
            shell.events.register("post_run_cell", self._end_of_cell)
            self._hooked = True

    def _end_of_cell(self, *_result) -> None:
        armed, self._armed_in_cell = self._armed_in_cell, []
        if not armed or self._lab.api is None:
            return
        try:
            rules = {r["id"]: r for r in self.rules()}
            for rule_id in armed:
                rule = rules.get(rule_id)
                if rule is None or rule.get("used", 0) > 0:
                    continue  # used: it belongs to its run and can fail no other
                self._api().lab_call("DELETE", f"chaos/{rule_id}", "lab.chaos")
                print(f"lab.chaos: no run reached step {rule['step']!r} of "
                      f"{rule['function']!r} in this cell, so its rule ({rule['mode']} "
                      f"x{rule['times']}) was removed and will not fail a later run. Arm a rule "
                      "in the cell that starts the run, or pass keep=True.")
        except Exception as exc:  # a hook must never break the learner's next cell
            print(f"lab.chaos: could not check this cell's rules ({exc})")

    def __repr__(self) -> str:
        return "lab.chaos: " + " ".join((self.__doc__ or "").split())


_MODE_WORDS = {"raise": "fail before the body runs",
               "slow": "answer late",
               "http_503": "are answered 503 before the body runs",
               "timeout": "hang, then time out, before the body runs",
               "lose_response": "run the body, then lose its answer"}
