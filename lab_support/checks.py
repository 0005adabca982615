"""Graded checks inside a notebook: ``lab.check(name, points=..., hint=...)``.

Two ways to write one, both run at once (a check is a cell-level assertion, not a test to
collect later)::

    @lab.check("retries until success", points=2, hint="Look at the run's attempts.")
    def _():
        assert run.status == "Completed"

    with lab.check("no step re-executed on replay"):
        assert counter["charge"] == 1

A failing check is recorded and shown with its hint; the notebook keeps going, so one
broken exercise does not hide the marks of the others. Set ``LAB_CHECKS_STRICT=1`` (or pass
``strict=True``) to re-raise the failure instead.

Every result is shown in the cell output: an HTML view, a text/plain fallback and the record
under the ``application/vnd.lab.check+json`` mimetype. The grader does not score from these
records (a notebook could forge them): it runs the source's check cells itself and watches
each check's outcome (``lab_support.grade_notebook``); the record is what a learner sees, and
the grader compares it with what it saw to flag a patched ``lab.check``.

Skipped: a check whose body raises ``lab_support.client.NotOnRealServer`` (a lab-only feature
such as the virtual clock, used against a real dev server) is recorded as skipped, not failed:
``skipped: true``, the reason in ``message``, 0 points of 0.

Hidden checks: a code cell whose first non-blank line is ``# HIDDEN CHECK`` (or that carries
the cell tag ``hidden-check``) is kept in ``solutions/``, removed from ``exercises/`` by
``python -m lab_support.assign``, and put back by the grader before it runs a submission.
"""

from __future__ import annotations

import asyncio
import html
import inspect
import os
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field

CHECK_MIMETYPE = "application/vnd.lab.check+json"
STRICT_ENV = "LAB_CHECKS_STRICT"
HIDDEN_CHECK_MARKER = "# HIDDEN CHECK"
HIDDEN_CHECK_TAG = "hidden-check"

_results: list["CheckResult"] = []
_lock = threading.Lock()


@dataclass
class CheckResult:
    """One check's outcome; ``points`` is what was earned, ``max`` what it was worth."""

    name: str
    passed: bool
    points: float
    max: float
    hint: str | None = None
    message: str | None = None
    skipped: bool = False
    time: float = field(default_factory=time.time)

    def to_record(self) -> dict:
        return asdict(self)

    def _repr_mimebundle_(self, include=None, exclude=None):
        return _bundle(self)


def is_hidden_check_cell(cell) -> bool:
    """True for a code cell marked as a hidden check (marker line or cell tag)."""
    if cell.get("cell_type") != "code":
        return False
    if HIDDEN_CHECK_TAG in (cell.get("metadata", {}).get("tags") or []):
        return True
    source = cell.get("source", "")
    if isinstance(source, list):
        source = "".join(source)
    for line in source.splitlines():
        if line.strip():
            return line.strip() == HIDDEN_CHECK_MARKER
    return False


class Check:
    """A decorator and a context manager; build it with :func:`check`."""

    def __init__(self, name: str, points: float = 1, hint: str | None = None,
                 strict: bool | None = None) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ValueError("check(name=...) needs a non-empty name, e.g. check('retries work')")
        if isinstance(points, bool) or not isinstance(points, (int, float)) or points < 0:
            raise ValueError(f"check({name!r}): points must be a number >= 0, got {points!r}")
        if hint is not None and not isinstance(hint, str):
            raise TypeError(f"check({name!r}): hint must be a string, got {type(hint).__name__}")
        self.name = name.strip()
        self.points = points
        self.hint = hint
        self.strict = strict
        self.result: CheckResult | None = None

    # -- decorator: run the function now ----------------------------------------------------
    def __call__(self, fn):
        if not callable(fn):
            raise TypeError(f"@check({self.name!r}) decorates a function, got {fn!r}")
        try:
            if inspect.iscoroutinefunction(fn):
                _run_coroutine(fn)
            else:
                fn()
        except Exception as exc:  # a failing check is data, not a crash
            self._finish(exc)
        else:
            self._finish(None)
        return self.result

    # -- context manager ------------------------------------------------------------------
    def __enter__(self) -> "Check":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is not None and not isinstance(exc, Exception):
            return False  # KeyboardInterrupt, SystemExit: never swallow
        self._finish(exc)
        return True  # failure recorded; _finish re-raised already if strict

    def _finish(self, exc: BaseException | None) -> None:
        passed = exc is None
        if _not_on_real_server(exc):
            self.result = CheckResult(name=self.name, passed=False, points=0, max=0,
                                      message=_describe(exc), skipped=True)
            record(self.result)
            return  # nothing failed: the feature does not exist on this server
        self.result = CheckResult(
            name=self.name, passed=passed, points=self.points if passed else 0,
            max=self.points, hint=None if passed else self.hint,
            message=None if passed else _describe(exc))
        record(self.result)
        if not passed and self._is_strict():
            raise exc

    def _is_strict(self) -> bool:
        if self.strict is not None:
            return self.strict
        return os.environ.get(STRICT_ENV, "").strip().lower() in {"1", "true", "yes"}


def check(name: str, points: float = 1, hint: str | None = None, *,
          strict: bool | None = None) -> Check:
    """A graded check; use as ``@check(...)`` on a function or ``with check(...):``."""
    return Check(name, points=points, hint=hint, strict=strict)


def record(result: CheckResult) -> None:
    """Keep and show one result (also used by checks built elsewhere)."""
    with _lock:
        _results.append(result)
        listeners = list(_listeners)
    for listener in listeners:
        try:
            listener(result)
        except Exception:  # a listener (lab.progress's file) must never break a check
            pass
    _show(result)


_listeners: list = []


def on_record(listener) -> None:
    """Also hand every result recorded in this process to ``listener(result)``: how a
    learner's kernel keeps its results for ``lab.progress()`` (``lab_support.progress``)."""
    with _lock:
        if listener not in _listeners:
            _listeners.append(listener)


def _not_on_real_server(exc: BaseException | None) -> bool:
    if exc is None:
        return False
    from .client import NotOnRealServer  # lazy: checks stay importable without httpx loaded

    return isinstance(exc, NotOnRealServer)


def results() -> list[CheckResult]:
    """Results recorded in this process so far (a re-run check appears again)."""
    with _lock:
        return list(_results)


def reset() -> None:
    with _lock:
        _results.clear()


def score() -> tuple[float, float]:
    """(earned, possible) over the latest result of each check name."""
    latest = {r.name: r for r in results()}
    return (sum(r.points for r in latest.values()), sum(r.max for r in latest.values()))


def _run_coroutine(fn) -> None:
    """Run an async check body to completion, even inside a kernel's running loop."""
    box: dict = {}

    def runner():
        try:
            asyncio.run(fn())
        except BaseException as exc:  # handed back to the calling thread
            box["exc"] = exc

    thread = threading.Thread(target=runner, name="lab-check-async", daemon=True)
    thread.start()
    thread.join()
    if "exc" in box:
        raise box["exc"]


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return ""
    text = str(exc).strip()
    if isinstance(exc, AssertionError) and not text:
        # A bare ``assert x == y`` has no message: show the failing line instead.
        frames = traceback.extract_tb(exc.__traceback__)
        line = frames[-1].line if frames else ""
        return f"assertion failed: {line}" if line else "assertion failed"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _plain(result: CheckResult) -> str:
    if result.skipped:
        return f"[SKIP] {result.name} (not observable on this server)\n  why:  {result.message}"
    mark = "PASS" if result.passed else "FAIL"
    text = f"[{mark}] {result.name} ({_num(result.points)}/{_num(result.max)} points)"
    if result.message:
        text += f"\n  why:  {result.message}"
    if result.hint:
        text += f"\n  hint: {result.hint}"
    return text


def _html(result: CheckResult) -> str:
    color, mark = ("#1a7f37", "&#10004; passed") if result.passed else ("#cf222e", "&#10008; failed")
    if result.skipped:
        color, mark = "#9a6700", "&#8856; skipped (not observable on this server)"
    parts = [
        f'<div class="lab-check" style="border-left:4px solid {color};padding:4px 10px;'
        f'margin:4px 0;font-family:sans-serif">',
        f'<b style="color:{color}">{mark}</b> &mdash; {html.escape(result.name)} '
        f'<span style="color:#57606a">({_num(result.points)}/{_num(result.max)} points)</span>',
    ]
    if result.message:
        parts.append(f'<div><code>{html.escape(result.message)}</code></div>')
    if result.hint:
        parts.append(f'<div>Hint: {html.escape(result.hint)}</div>')
    parts.append("</div>")
    return "".join(parts)


def _bundle(result: CheckResult) -> dict:
    return {"text/plain": _plain(result), "text/html": _html(result),
            CHECK_MIMETYPE: result.to_record()}


def _num(value: float) -> str:
    return f"{value:g}"


def _show(result: CheckResult) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # plain Python without IPython installed
        print(_plain(result))
        return
    if get_ipython() is None:
        print(_plain(result))
        return
    display(_bundle(result), raw=True, metadata={CHECK_MIMETYPE: {"lab_check": True}})
