"""Scripted faults (lab only), so retry and crash lessons happen the same way every time.

A rule names a function (slug, or the local id after the app prefix), a user step id, how
many times to fire, and a mode:
* ``raise``: the step fails before its body runs (the engine answers the planned call with a
  step error, as if the body had raised);
* ``http_503`` / ``timeout``: the call to the app fails as a 503 / a timeout;
* ``lose_response``: the body runs, then its answer is dropped, so the retry runs it again:
  the side-effect-happened-but-not-recorded window;
* ``slow``: the body runs, and its answer arrives ``duration_ms`` of *engine* time after the
  call started, while the call keeps its concurrency slots (the scheduler's ``hold``): "each
  email takes 8 s" on the virtual clock, without a sleep (which would free the slot).
``times`` may be None: the rule fires on every matching call until the rules are cleared.
While a function has live rules, its runs use planned steps (disable_immediate_execution),
so every step is a separate call the engine can intercept.

A rule's scope says which runs it may touch. ``"run"`` (the default for a failure with a
count): it belongs to the first run it hits (``run_id``), so its remaining failures go to that
run only and a rule armed for one run never fails a later one. ``"any"`` (the default for
``slow`` and for ``times=None``): every matching call, of any run, until used up or cleared.
"""

from __future__ import annotations

import itertools

MODES = ("raise", "http_503", "timeout", "lose_response", "slow")
SCOPES = ("run", "any")


class ChaosError(ValueError):
    pass


class Chaos:
    def __init__(self) -> None:
        self.rules: list[dict] = []
        self._ids = itertools.count(1)

    def add(self, function: str, step: str, times: int | None = 1, mode: str = "raise",
            duration_ms: int | None = None, scope: str | None = None) -> dict:
        if mode not in MODES:
            raise ChaosError(f"unknown chaos mode {mode!r}; use one of {', '.join(MODES)}")
        if scope is None:
            scope = "any" if mode == "slow" or times is None else "run"
        if scope not in SCOPES:
            raise ChaosError(f"unknown chaos scope {scope!r}; use one of {', '.join(SCOPES)}")
        if not function or not step:
            raise ChaosError("a chaos rule needs a function and a step")
        if times is not None and int(times) < 1:
            raise ChaosError("times must be at least 1 (or null: every call until cleared)")
        if mode == "slow" and (duration_ms is None or int(duration_ms) <= 0):
            raise ChaosError('a "slow" rule needs a positive duration, e.g. "8s"')
        times = None if times is None else int(times)
        rule = {"id": f"chaos-{next(self._ids)}", "function": function, "step": step,
                "times": times, "used": 0, "remaining": times, "mode": mode,
                "scope": scope, "run_id": None}
        if mode == "slow":
            rule["duration_ms"] = int(duration_ms)
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        self.rules.clear()

    def remove(self, rule_id: str) -> bool:
        before = len(self.rules)
        self.rules[:] = [r for r in self.rules if r["id"] != rule_id]
        return len(self.rules) < before

    @staticmethod
    def _fn_matches(rule: dict, slug: str) -> bool:
        return rule["function"] == slug or slug.endswith("-" + rule["function"])

    @staticmethod
    def _run_matches(rule: dict, run_id: str | None) -> bool:
        return rule["run_id"] is None or run_id is None or rule["run_id"] == run_id

    def active_for(self, slug: str, run_id: str | None = None) -> bool:
        return any(_live(r) and self._fn_matches(r, slug) and self._run_matches(r, run_id)
                   for r in self.rules)

    def take(self, slug: str, step_name: str | None, run_id: str | None = None) -> dict | None:
        for rule in self.rules:
            if _live(rule) and self._fn_matches(rule, slug) and rule["step"] == step_name \
                    and self._run_matches(rule, run_id):
                if rule["remaining"] is not None:
                    rule["remaining"] -= 1
                rule["used"] += 1
                if rule["scope"] == "run":
                    rule["run_id"] = run_id
                return dict(rule)
        return None


def _live(rule: dict) -> bool:
    return rule["remaining"] is None or rule["remaining"] > 0
