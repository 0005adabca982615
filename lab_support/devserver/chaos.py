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
"""

from __future__ import annotations

import itertools

MODES = ("raise", "http_503", "timeout", "lose_response")


class ChaosError(ValueError):
    pass


class Chaos:
    def __init__(self) -> None:
        self.rules: list[dict] = []
        self._ids = itertools.count(1)

    def add(self, function: str, step: str, times: int = 1, mode: str = "raise") -> dict:
        if mode not in MODES:
            raise ChaosError(f"unknown chaos mode {mode!r}; use one of {', '.join(MODES)}")
        if not function or not step:
            raise ChaosError("a chaos rule needs a function and a step")
        if int(times) < 1:
            raise ChaosError("times must be at least 1")
        rule = {"id": f"chaos-{next(self._ids)}", "function": function, "step": step,
                "times": int(times), "used": 0, "remaining": int(times), "mode": mode}
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        self.rules.clear()

    @staticmethod
    def _fn_matches(rule: dict, slug: str) -> bool:
        return rule["function"] == slug or slug.endswith("-" + rule["function"])

    def active_for(self, slug: str) -> bool:
        return any(r["remaining"] > 0 and self._fn_matches(r, slug) for r in self.rules)

    def take(self, slug: str, step_name: str | None) -> dict | None:
        for rule in self.rules:
            if rule["remaining"] > 0 and self._fn_matches(rule, slug) and rule["step"] == step_name:
                rule["remaining"] -= 1
                rule["used"] += 1
                return dict(rule)
        return None
