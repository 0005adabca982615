"""CEL expressions (cel-python), evaluated the way the server does.

Variables: ``event`` (the run's triggering event in map form) and, for wait_for_event and
cancel ``if`` expressions, ``async`` (the incoming candidate event). Compiled programs are
cached. Errors are raised as ExpressionError with the expression in the message: callers
decide whether that fails a run (waits), skips a trigger (triggers), or rejects a sync.
"""

from __future__ import annotations

import functools
from typing import Any

import celpy
from celpy import celtypes


class ExpressionError(ValueError):
    pass


_ENV = celpy.Environment()


@functools.lru_cache(maxsize=2048)
def compile_expression(expr: str):
    try:
        return _ENV.program(_ENV.compile(expr))
    except Exception as exc:  # CELParseError and friends
        raise ExpressionError(f"invalid expression {expr!r}: {exc}".strip()) from None


def event_map(event: dict) -> dict:
    """The map form of an event that expressions see."""
    out = {"name": event.get("name", ""), "data": event.get("data") or {},
           "user": event.get("user") or {}, "id": event.get("id", ""),
           "ts": event.get("ts", 0)}
    if event.get("v") is not None:
        out["v"] = event["v"]
    return out


def to_python(value: Any) -> Any:
    if isinstance(value, celtypes.BoolType):
        return bool(value)
    if isinstance(value, celtypes.IntType) or isinstance(value, celtypes.UintType):
        return int(value)
    if isinstance(value, celtypes.DoubleType):
        return float(value)
    if isinstance(value, celtypes.StringType):
        return str(value)
    if isinstance(value, celtypes.MapType):
        return {str(to_python(k)): to_python(v) for k, v in value.items()}
    if isinstance(value, celtypes.ListType):
        return [to_python(v) for v in value]
    if value is None or isinstance(value, celtypes.NullType):
        return None
    return value


def evaluate(expr: str, event: dict | None = None, async_event: dict | None = None) -> Any:
    program = compile_expression(expr)
    activation = {}
    if event is not None:
        activation["event"] = celpy.json_to_cel(event_map(event))
    if async_event is not None:
        activation["async"] = celpy.json_to_cel(event_map(async_event))
    try:
        result = program.evaluate(activation)
    except Exception as exc:
        raise ExpressionError(f"expression {expr!r} failed: {_reason(exc)}") from None
    if isinstance(result, celpy.CELEvalError):
        raise ExpressionError(f"expression {expr!r} failed: {_reason(result)}")
    return to_python(result)


def _reason(exc: Exception) -> str:
    args = getattr(exc, "args", ())
    return str(args[0]) if args else str(exc)


def truthy(expr: str, event: dict | None = None, async_event: dict | None = None) -> bool:
    result = evaluate(expr, event, async_event)
    if not isinstance(result, bool):
        raise ExpressionError(f"expression {expr!r} gave {result!r}, not a boolean")
    return result


def key_value(expr: str, event: dict) -> str | None:
    """A flow-control key: the value as a string; ``False`` means 'no key applies'."""
    result = evaluate(expr, event)
    if result is False:
        return None
    return str(result)
