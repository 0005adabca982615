"""One HTTP client for both engines (the embedded one and a real ``inngest dev``).

It uses only what both serve: ``POST /e``, ``GET /dev``, REST v1 and GraphQL at ``/v0/gql``.
The lab-only ``/lab/v1`` calls (clock, chaos) raise ``NotOnRealServer`` on a real server.

Three quirks of the real server shape this file: GET responses under ``/v1`` are cached for a
few seconds by URL (so every GET carries a unique ``_`` query parameter, and live status is
read through GraphQL, which is POST); GET errors come back as HTTP 200 with the real status
inside the body (so bodies are checked for ``status`` >= 400); and the row GraphQL reads for
a run is written 20-90 ms after REST lists the run, so "not found" from GraphQL
(``sql: no rows in result set`` there, ``run … not found`` / ``no root span`` on the embedded
engine) is polled for up to ``NOT_FOUND_WAIT_S`` before it counts (``RunNotFound``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import time
from datetime import datetime, timezone
from typing import Any

import httpx

# The SDK's own rule: INNGEST_EVENT_KEY when set (an engine started with it requires it).
EVENT_KEY = os.environ.get("INNGEST_EVENT_KEY") or "NO_EVENT_KEY_SET"
TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED", "SKIPPED"})
# REST status strings → the GraphQL enum, so callers see one vocabulary.
REST_TO_GQL = {"Scheduled": "QUEUED", "Running": "RUNNING", "Completed": "COMPLETED",
               "Failed": "FAILED", "Cancelled": "CANCELLED", "Skipped": "SKIPPED"}
EPOCH = "1970-01-01T00:00:00Z"
# GraphQL "not found yet": the real server's row lags REST; the embedded engine's wording.
NOT_FOUND_MARKERS = ("no rows in result set", "not found", "no root span found")
NOT_FOUND_WAIT_S = 5.0
NOT_FOUND_POLL_S = 0.05
RUNS_MAX_PAGES = 100  # 10,000 runs read at most for one filtered list
# A real server's output and trace catch up after the run's status.
OUTPUT_WAIT_S = 3.0
TRACE_SETTLE_S = 3.0
TRACE_SETTLE_POLL_S = 0.3

RUN_FIELDS = """id status queuedAt startedAt endedAt output triggerIDs eventName
  function { slug name }"""

SPAN_FIELDS = """name status stepOp stepID attempts queuedAt startedAt endedAt duration outputID
  stepInfo { __typename
    ... on SleepStepInfo { sleepUntil }
    ... on WaitForEventStepInfo { eventName expression timeout foundEventID timedOut }
    ... on InvokeStepInfo { functionID runID timedOut } }"""


class LabClientError(RuntimeError):
    """The engine answered with an error; the message has its words."""


class NotOnRealServer(LabClientError):
    """A lab-only feature (virtual clock, chaos) was used against a real dev server."""


class RunNotFound(LabClientError):
    """GraphQL still did not know the run (or its trace) after the bounded wait."""


def is_not_found(message: str) -> bool:
    text = message.lower()
    return any(marker in text for marker in NOT_FOUND_MARKERS)


def step_hash(step_id: str) -> str:
    """The engine's id for a user step id: SHA-1 hex, as the SDK computes it."""
    return hashlib.sha1(step_id.encode()).hexdigest()


def to_rfc3339(value: datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    text = value.replace("Z", "+00:00")
    # Go prints nanoseconds; Python's parser accepts at most microseconds.
    if "." in text:
        head, _, rest = text.partition(".")
        frac = "".join(itertools.takewhile(str.isdigit, rest))
        text = f"{head}.{frac[:6].ljust(6, '0')}{rest[len(frac):]}"
    return datetime.fromisoformat(text)


def _attempts_as_counts(span: dict | None) -> dict | None:
    """A real server's span ``attempts`` is the last attempt's 0-based index; the embedded
    engine's (and every caller's) is a count."""
    if not span:
        return span
    out = dict(span, attempts=int(span.get("attempts") or 0) + 1)
    if span.get("childrenSpans"):
        out["childrenSpans"] = [_attempts_as_counts(c) for c in span["childrenSpans"]]
    return out


def _in_start_order(span: dict | None) -> dict | None:
    """A real server lists a run's step spans (and their copies) in an order that changes
    from one read to the next; in start order (unstarted spans last, ties kept), a trace
    reads in execution order and two reads of a settled run compare equal."""
    if not span or not span.get("childrenSpans"):
        return span
    children = [_in_start_order(c) for c in span["childrenSpans"]]
    children.sort(key=lambda c: (c.get("startedAt") is None,
                                 parse_time(c["startedAt"]) if c.get("startedAt") else 0))
    return dict(span, childrenSpans=children)


class EngineClient:
    def __init__(self, url: str, *, timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout, transport=transport)
        self._info: dict | None = None
        self._bust = itertools.count()

    def close(self) -> None:
        self._http.close()

    # -- server identity -------------------------------------------------------------
    def info(self, refresh: bool = False) -> dict:
        if self._info is None or refresh:
            self._info = self._get_json("/dev")
        return self._info

    @property
    def kind(self) -> str:
        """``embedded`` for our engine, ``real`` for an Inngest dev server."""
        return "embedded" if self.info().get("engine") == "embedded" else "real"

    @property
    def version(self) -> str:
        return str(self.info().get("version") or "unknown")

    def healthy(self) -> bool:
        try:
            return self._http.get("/health", params=self._nocache()).status_code == 200
        except httpx.HTTPError:
            return False

    # -- plumbing ----------------------------------------------------------------------
    def _nocache(self, params: dict | None = None) -> dict:
        # A unique query string defeats the real server's per-URL GET cache.
        return {**(params or {}), "_": f"{time.time_ns()}-{next(self._bust)}"}

    def _get_json(self, path: str, params: dict | None = None) -> Any:
        try:
            resp = self._http.get(path, params=self._nocache(params))
        except httpx.HTTPError as exc:
            raise LabClientError(f"GET {self.url}{path} failed: {exc}") from exc
        return self._decode(resp, f"GET {path}")

    def _decode(self, resp: httpx.Response, what: str) -> Any:
        if resp.status_code >= 400:
            raise LabClientError(f"{what} → HTTP {resp.status_code}: {resp.text[:300]}")
        if not resp.content:
            return None
        try:
            body = resp.json()
        except ValueError as exc:
            raise LabClientError(f"{what} did not return JSON: {resp.text[:200]}") from exc
        if isinstance(body, dict) and isinstance(body.get("status"), int) \
                and body["status"] >= 400 and body.get("error"):
            raise LabClientError(f"{what} → {body['status']}: {body['error']}")
        return body

    def gql(self, query: str, variables: dict | None = None, *,
            not_found_wait: float = 0.0) -> dict:
        """One GraphQL call. With ``not_found_wait`` > 0, a "not found" answer is asked
        again until that many seconds have passed, then raised as ``RunNotFound``."""
        deadline = time.monotonic() + not_found_wait
        pause = NOT_FOUND_POLL_S
        while True:
            try:
                return self._gql_once(query, variables)
            except LabClientError as exc:
                if not is_not_found(str(exc)):
                    raise
                if time.monotonic() + pause > deadline:
                    raise RunNotFound(str(exc)) from None
            time.sleep(pause)
            pause = min(pause * 2, 0.5)

    def _gql_once(self, query: str, variables: dict | None) -> dict:
        try:
            resp = self._http.post("/v0/gql", json={"query": query,
                                                    "variables": variables or {}})
        except httpx.HTTPError as exc:
            raise LabClientError(f"GraphQL request to {self.url} failed: {exc}") from exc
        body = self._decode(resp, "POST /v0/gql")
        if body.get("errors"):
            messages = "; ".join(e.get("message", str(e)) for e in body["errors"])
            raise LabClientError(f"GraphQL error: {messages}")
        return body.get("data") or {}

    # -- events --------------------------------------------------------------------------
    def send(self, events: list[dict]) -> list[str]:
        """Send events; returns the engine's internal event ids, one per event."""
        resp = self._http.post(f"/e/{EVENT_KEY}", json=events)
        try:
            body = resp.json()
        except ValueError as exc:
            raise LabClientError(f"POST /e answered {resp.status_code}: {resp.text[:200]}") from exc
        if resp.status_code >= 400 or body.get("error"):
            raise LabClientError(f"The engine rejected the event(s): {body.get('error', body)}")
        return list(body.get("ids", []))

    # -- functions and runs ------------------------------------------------------------------
    def functions(self) -> list[dict]:
        data = self.gql("query { functions { id slug name app { externalID } } }")
        return data.get("functions") or []

    def function_id(self, slug: str) -> str:
        for fn in self.functions():
            if fn["slug"] == slug:
                return fn["id"]
        known = ", ".join(sorted(f["slug"] for f in self.functions())) or "none synced"
        raise LabClientError(f"No function with slug {slug!r} is synced (known: {known}).")

    def runs(self, *, function_ids: list[str] | None = None, status: list[str] | None = None,
             since: datetime | str | None = None, until: datetime | str | None = None,
             limit: int = 400) -> list[dict]:
        """Runs, newest first, through GraphQL (accurate live status on both engines)."""
        query = f"""query($first:Int!,$after:String,$filter:RunsFilterV2!) {{
          runs(first:$first, after:$after, filter:$filter,
               orderBy:[{{field:QUEUED_AT, direction:DESC}}]) {{
            edges {{ cursor node {{ {RUN_FIELDS} }} }}
            pageInfo {{ hasNextPage endCursor }} }} }}"""
        flt: dict[str, Any] = {"from": to_rfc3339(since) or EPOCH}
        if until is not None:
            flt["until"] = to_rfc3339(until)
        if function_ids:
            flt["functionIDs"] = function_ids
        if status:
            flt["status"] = status
        out: list[dict] = []
        after = None
        for _page in range(RUNS_MAX_PAGES):
            page = self.gql(query, {"first": min(100, limit - len(out)) if not status else 100,
                                    "after": after, "filter": flt})["runs"]
            nodes = [edge["node"] for edge in page["edges"]]
            # A real dev server drops a status it cannot filter on (SKIPPED) and answers
            # every run instead: the status filter is applied here as well.
            out += [self._with_output(n) for n in nodes if not status or n["status"] in status]
            if len(out) >= limit or not page["pageInfo"]["hasNextPage"] or not nodes:
                break
            after = page["pageInfo"]["endCursor"]
        return out[:limit]

    def run(self, run_id: str, *, wait: float = NOT_FOUND_WAIT_S) -> dict:
        """One run, live status. A run GraphQL does not know yet is asked for again for up
        to ``wait`` seconds (``wait=0``: ask once), then ``RunNotFound``."""
        deadline = time.monotonic() + wait
        while True:
            remaining = max(0.0, deadline - time.monotonic())
            try:
                data = self.gql(f"query($id:String!) {{ run(runID:$id) {{ {RUN_FIELDS} }} }}",
                                {"id": run_id}, not_found_wait=remaining)
            except RunNotFound:
                data = {}
            if data.get("run"):
                return self._with_output(data["run"])
            if time.monotonic() >= deadline:
                raise RunNotFound(f"No run with id {run_id!r}"
                                  + (f" after {wait:.0f} s." if wait else "."))
            time.sleep(NOT_FOUND_POLL_S)

    def _with_output(self, run: dict) -> dict:
        """A real server marks a run finished a moment before it stores the output: a
        finished run without one is read again for up to ``OUTPUT_WAIT_S``."""
        if run.get("output") is not None or run.get("status") not in ("COMPLETED", "FAILED") \
                or self.kind == "embedded":
            return run
        query = f"query($id:String!) {{ run(runID:$id) {{ {RUN_FIELDS} }} }}"
        deadline = time.monotonic() + OUTPUT_WAIT_S
        while time.monotonic() < deadline:
            time.sleep(NOT_FOUND_POLL_S * 2)
            again = self.gql(query, {"id": run["id"]}).get("run") or {}
            if again.get("output") is not None:
                return again
        return run

    def trace(self, run_id: str, *, memo_field: bool = False, settle: bool = False) -> dict:
        """The run's root span with step spans (and their attempts) as children.

        Real server: attempts become counts, and ``settle`` reads again until two reads
        agree (its spans catch up a little after the run's status)."""
        extra = " memoized" if memo_field else ""
        query = f"""query($id:String!) {{ runTrace(runID:$id) {{
            name status startedAt endedAt outputID
            childrenSpans {{ {SPAN_FIELDS}{extra}
              childrenSpans {{ name status attempts startedAt endedAt outputID }} }} }} }}"""
        if self.kind == "embedded":
            return self.gql(query, {"id": run_id}, not_found_wait=NOT_FOUND_WAIT_S)["runTrace"]
        deadline = time.monotonic() + TRACE_SETTLE_S
        trace = None
        while True:
            again = _in_start_order(self.gql(query, {"id": run_id},
                                             not_found_wait=NOT_FOUND_WAIT_S)["runTrace"])
            if not settle or again == trace or time.monotonic() >= deadline:
                # Only a real server counts from 0 (asked of /dev, not of ``kind``, which
                # tests override to drive these paths on the embedded engine).
                zero_based = self.info().get("engine") != "embedded"
                return _attempts_as_counts(again) if zero_based else again
            trace = again
            time.sleep(TRACE_SETTLE_POLL_S)

    def span_output(self, output_id: str) -> dict:
        query = """query($id:String!) { runTraceSpanOutputByID(outputID:$id) {
            data error { message name stack } } }"""
        return self.gql(query, {"id": output_id},
                        not_found_wait=NOT_FOUND_WAIT_S)["runTraceSpanOutputByID"] or {}

    def trigger(self, run_id: str) -> dict:
        query = """query($id:String!) { runTrigger(runID:$id) {
            eventName IDs payloads timestamp isBatch batchID cron } }"""
        return self.gql(query, {"id": run_id},
                        not_found_wait=NOT_FOUND_WAIT_S)["runTrigger"] or {}

    def event_runs(self, event_id: str) -> list[dict]:
        """Runs an event started (REST; its status can be stale on the real server, so
        callers re-read each run through GraphQL)."""
        body = self._get_json(f"/v1/events/{event_id}/runs")
        return body.get("data") or []

    def event(self, event_id: str) -> dict | None:
        """One stored event by its internal id (``id`` in it is the sender's id), or None."""
        try:
            body = self._get_json(f"/v1/events/{event_id}")
        except LabClientError:
            return None
        data = (body or {}).get("data")
        return data if isinstance(data, dict) and data.get("name") else None

    def rest_events(self, *, name: str | None = None,
                    received_after: datetime | str | None = None, cursor: str | None = None,
                    limit: int = 50) -> list[dict]:
        """Recent events through REST ``/v1/events`` (newest first, older ones after
        ``cursor``, an internal id; no internal events), with both ids of each event."""
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        if name:
            params["name"] = name
        if received_after is not None:
            params["received_after"] = to_rfc3339(received_after)
        body = self._get_json("/v1/events", params)
        return list((body or {}).get("data") or [])

    # -- control -------------------------------------------------------------------------
    def cancel_run(self, run_id: str) -> None:
        self.gql("mutation($id:ULID!) { cancelRun(runID:$id) { id } }", {"id": run_id})

    def rerun(self, run_id: str, from_step_id: str | None = None) -> str:
        if from_step_id is None:
            data = self.gql("mutation($id:ULID!) { rerun(runID:$id) }", {"id": run_id})
        else:
            data = self.gql("mutation($id:ULID!,$step:RerunFromStepInput) "
                            "{ rerun(runID:$id, fromStep:$step) }",
                            {"id": run_id, "step": {"stepID": from_step_id}})
        return data["rerun"]

    def function_config(self, slug: str) -> dict:
        """The synced function's registration config (what the SDK sent at sync)."""
        for fn in self.gql("query { functions { slug config } }").get("functions") or []:
            if fn["slug"] == slug:
                return json.loads(fn.get("config") or "{}")
        raise LabClientError(f"No function with slug {slug!r} is synced.")

    def invoke(self, slug: str, data: dict | None = None) -> bool:
        """GraphQL ``invokeFunction``: an ``inngest/function.invoked`` event aimed at ``slug``
        (both engines answer a bare Boolean, not the run id)."""
        data = self.gql("mutation($slug:String!,$data:Map) "
                        "{ invokeFunction(functionSlug:$slug, data:$data) }",
                        {"slug": slug, "data": data or {}})
        return bool(data.get("invokeFunction"))

    def events(self, *, names: list[str] | None = None, since: datetime | str | None = None,
               internal: bool = False, limit: int = 200) -> list[dict]:
        """Events newest first (GraphQL ``eventsV2``), each with the runs it started."""
        query = """query($first:Int!,$after:String,$filter:EventsFilter!) {
          eventsV2(first:$first, after:$after, filter:$filter) {
            edges { cursor node { id name idempotencyKey occurredAt receivedAt raw
                                  runs { id status function { slug } } } }
            pageInfo { hasNextPage endCursor } } }"""
        flt: dict[str, Any] = {"from": to_rfc3339(since) or EPOCH,
                               "includeInternalEvents": internal}
        if names:
            flt["eventNames"] = names
        out: list[dict] = []
        after = None
        while len(out) < limit:
            page = self.gql(query, {"first": min(100, limit - len(out)), "after": after,
                                    "filter": flt})["eventsV2"]
            out += [edge["node"] for edge in page["edges"]]
            if not page["pageInfo"]["hasNextPage"] or not page["edges"]:
                break
            after = page["pageInfo"]["endCursor"]
        return out

    def bulk_cancel(self, *, app_id: str, function_id: str, started_after: str | None,
                    started_before: str, if_exp: str | None) -> dict:
        body = {"app_id": app_id, "function_id": function_id,
                "started_before": started_before}
        if started_after:
            body["started_after"] = started_after
        if if_exp:
            body["if"] = if_exp
        resp = self._http.post("/v1/cancellations", json=body)
        return self._decode(resp, "POST /v1/cancellations") or {}

    # -- lab-only (embedded engine) ----------------------------------------------------------
    def require_embedded(self, feature: str) -> None:
        if self.kind != "embedded":
            raise NotOnRealServer(
                f"{feature} exists only in the lab's embedded engine. A real Inngest dev "
                "server runs on wall-clock time with no fault injection: use lab.hours(...) "
                "for short real sleeps, and make a step fail by raising in your own code.")

    def lab_get(self, path: str, feature: str, params: dict | None = None) -> Any:
        self.require_embedded(feature)
        return self._get_json(f"/lab/v1/{path}", params)

    def lab_call(self, method: str, path: str, feature: str, body: dict | None = None) -> Any:
        self.require_embedded(feature)
        resp = self._http.request(method, f"/lab/v1/{path}", json=body)
        return self._decode(resp, f"{method} /lab/v1/{path}")
