"""The shape of a registration (``POST /fn/register``), as strict pydantic models.

This is the type check only: every field has the JSON type the SDK sends (no ``"5"`` for 5,
no ``2.0`` for 2, no ``true`` for 1), counts and limits are whole numbers of at least one,
and options the engine does not know inside a known block are refused. A failure names the
path of the bad field, e.g. ``functions[0].concurrency[1].limit: Input should be a valid
integer``. What the values mean (cron, CEL, durations, combinations) is checked afterwards,
in ``sync.validate_function``, on documents that have passed this schema.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

Count = Annotated[int, Field(ge=1)]


class _Block(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", populate_by_name=True)


class Retries(_Block):
    attempts: int = Field(ge=0)      # more than 20 is capped at 20, as on the real server


class Runtime(_Block):
    type: str | None = None
    url: str


class StepSpec(_Block):
    id: str | None = None
    name: str | None = None
    runtime: Runtime
    retries: Retries | None = None


class Trigger(_Block):
    event: str | None = None
    expression: str | None = None
    cron: str | None = None
    jitter: str | None = None


class Concurrency(_Block):
    limit: Count
    key: str | None = None
    scope: str | None = None


class Throttle(_Block):
    limit: Count
    period: str
    burst: int | None = Field(default=None, ge=0)
    key: str | None = None


class RateLimit(_Block):
    limit: Count
    period: str
    key: str | None = None


class Debounce(_Block):
    period: str
    key: str | None = None
    timeout: str | None = None


class Priority(_Block):
    run: str | None = None


class Batch(_Block):
    maxSize: Count  # noqa: N815 - the wire name
    timeout: str
    key: str | None = None
    if_: str | None = Field(default=None, alias="if")


class Cancel(_Block):
    event: str
    if_: str | None = Field(default=None, alias="if")
    timeout: str | None = None


class Timeouts(_Block):
    start: str | None = None
    finish: str | None = None


class Singleton(_Block):
    key: str | None = None
    mode: str | None = None


class FunctionSpec(BaseModel):
    # Unknown top-level options pass here and are refused by name in validate_function.
    model_config = ConfigDict(strict=True, extra="allow", populate_by_name=True)
    id: str = Field(min_length=1)
    name: str | None = None
    triggers: list[Trigger]
    steps: dict[str, StepSpec]
    concurrency: list[Concurrency] | None = None
    throttle: Throttle | None = None
    rateLimit: RateLimit | None = None  # noqa: N815
    debounce: Debounce | None = None
    priority: Priority | None = None
    batchEvents: Batch | None = None  # noqa: N815
    idempotency: str | None = None
    cancel: list[Cancel] | None = None
    timeouts: Timeouts | None = None
    singleton: Singleton | None = None


class AppSpec(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")
    appname: str | None = None
    appName: str | None = None  # noqa: N815
    url: str | None = None
    sdk: str | None = None
    framework: str | None = None
    v: str | None = None
    appVersion: str | None = None  # noqa: N815
    functions: list[FunctionSpec]


def shape_problems(doc: dict) -> list[str]:
    """Type errors of a registration body, each with the path of the field."""
    try:
        AppSpec.model_validate(doc)
    except ValidationError as exc:
        return [f"{_path(err['loc'], doc)}: {err['msg']}" for err in exc.errors()[:20]]
    return []


def function_shape_problems(fn: dict) -> list[str]:
    try:
        FunctionSpec.model_validate(fn)
    except ValidationError as exc:
        return [f"{_path(err['loc'], fn)}: {err['msg']}" for err in exc.errors()[:20]]
    return []


def _path(loc: tuple, doc) -> str:
    """('functions', 0, 'concurrency', 1, 'limit') -> 'functions[0] (app-fn).concurrency[1].limit'."""
    out = ""
    for n, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
            if n == 1 and loc[0] == "functions":
                fn = (doc.get("functions") or [None] * (part + 1))[part]
                if isinstance(fn, dict) and isinstance(fn.get("id"), str):
                    out += f" ({fn['id'][:80]})"
        else:
            out += ("." if out else "") + str(part)
    return out or "body"
