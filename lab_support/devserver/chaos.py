"""Scripted faults (lab only), so retry and crash lessons happen the same way every time.

A rule names a function (slug, or the local id after the app prefix), a user step id, how
many times to fire, and a mode:
* ``raise``: the step fails before its body runs (the engine answers the planned call with a
  step error, as if the body had raised);
* ``http_503`` / ``timeout``: the call to the app fails as a 503 / a timeout;
* ``lose_response``: the body runs, then its answer is dropped, so the retry runs it again:
  the side-effect-happened-but-not-recorded window.
While a function has live rules, its runs use planned steps (disable_immediate_execution),
so every step is a separate call the engine can intercept.

A rule belongs to the first run it hits (``run_id``): its remaining failures go to that run
only, so a rule armed for one run never fails a later run (scope ``"run"``, the default).
Scope ``"any"`` lets the failures spread over several runs until they are used up.
"""

from __future__ import annotations

import itertools

MODES = ("raise", "http_503", "timeout", "lose_response")
SCOPES = ("run", "any")


class ChaosError(ValueError):
    pass


class Chaos:
    def __init__(self) -> None:
        self.rules: list[dict] = []
        self._ids = itertools.count(1)

    def add(self, function: str, step: str, times: int = 1, mode: str = "raise",
            scope: str = "run") -> dict:
        if mode not in MODES:
            raise ChaosError(f"unknown chaos mode {mode!r}; use one of {', '.join(MODES)}")
        if scope not in SCOPES:
            raise ChaosError(f"unknown chaos scope {scope!r}; use one of {', '.join(SCOPES)}")
        if not function or not step:
            raise ChaosError("a chaos rule needs a function and a step")
        if int(times) < 1:
            raise ChaosError("times must be at least 1")
        rule = {"id": f"chaos-{next(self._ids)}", "function": function, "step": step,
                "times": int(times), "used": 0, "remaining": int(times), "mode": mode,
                "scope": scope, "run_id": None}
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
        return any(r["remaining"] > 0 and self._fn_matches(r, slug)
                   and self._run_matches(r, run_id) for r in self.rules)

    def take(self, slug: str, step_name: str | None, run_id: str | None = None) -> dict | None:
        for rule in self.rules:
            if rule["remaining"] > 0 and self._fn_matches(rule, slug) \
                    and rule["step"] == step_name and self._run_matches(rule, run_id):
                rule["remaining"] -= 1
                rule["used"] += 1
                if rule["scope"] == "run":
                    rule["run_id"] = run_id
                return dict(rule)
        return None
