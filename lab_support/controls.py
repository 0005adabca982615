"""``lab.clock`` (the engine's virtual clock) and ``lab.chaos`` (fault injection).

Both exist only in the embedded engine; on a real dev server every call that would change
something raises ``NotOnRealServer`` with an explanation.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from .client import parse_time, to_rfc3339

if TYPE_CHECKING:
    from .lab_object import Lab

CHAOS_MODES = ("raise", "http_503", "timeout", "lose_response")   # fail_step's; slow_step below
CHAOS_SCOPES = ("run", "any")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


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

    def _api(self):
        return self._lab._require_engine()

    def info(self) -> dict:
        return self._api().lab_get("clock", "The virtual clock (lab.clock)")

    def now(self) -> datetime:
        """The engine's current time (wall time on a real dev server)."""
        api = self._api()
        if api.kind != "embedded":
            return datetime.now(timezone.utc)
        return parse_time(self.info()["now"])

    def advance(self, duration: Any = None, *, to: datetime | str | None = None) -> dict:
        """Move time forward by ``duration`` (timedelta, seconds, '4h') or to ``to``;
        timers that fall due start their work before this returns."""
        if (duration is None) == (to is None):
            raise ValueError("Give either a duration (lab.clock.advance('4h')) or to=<time>.")
        body = {"to": to_rfc3339(to)} if to is not None else {"seconds": to_seconds(duration)}
        return self._api().lab_call("POST", "clock/advance", "lab.clock.advance", body)

    def to_next_timer(self) -> dict:
        """Jump to the next pending timer of any kind (sleep, wait timeout, cron tick...)."""
        return self._api().lab_call("POST", "clock/advance", "lab.clock.to_next_timer",
                                    {"to_next_timer": True})

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
    """Fault injection in the embedded engine: make a chosen step of a function fail its
    next ``times`` attempts. Modes: raise (the step errors before its body runs), http_503
    and timeout (the call to your host fails), lose_response (the body runs, then the
    engine drops the answer, so the step runs again: the side-effect window). ``slow_step``
    makes a step take a while of engine time while it holds its concurrency slot.
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
        rule = self._api().lab_call("POST", "chaos", "lab.chaos",
                                    {"function": slug, "step": step, "times": times,
                                     "mode": mode, "scope": scope})
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
        return self._api().lab_call("POST", "chaos", "lab.chaos.slow_step",
                                    {"function": slug, "step": step, "times": times,
                                     "mode": "slow", "duration": seconds})

    def rules(self) -> list[dict]:
        body = self._api().lab_get("chaos", "lab.chaos")
        return body.get("data", body) if isinstance(body, dict) else body

    def clear(self) -> None:
        self._armed_in_cell.clear()
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
