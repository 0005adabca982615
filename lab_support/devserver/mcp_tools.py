"""The engine's MCP endpoint: the dev server's classic tool set, answered by this engine.

``create_mcp_server(api_base)`` builds an ``MCPServer`` (the ``mcp`` 2.x name of FastMCP)
whose tools call the engine's own HTTP API at ``api_base`` with httpx, so the tools see
exactly what the dashboard and the SDK see. Tool names and parameter names copy the real
dev server (``runId``, ``pollInterval`` ...) so an agent configured for it works here too.
The docs tools serve this workbook's notes (``docs/notes`` and ``docs/*.md``), never files
outside that folder. ``grep_docs`` matches with RE2 (``google-re2``), which runs in time
linear in the text for any pattern, so a pattern like ``(a+)+$`` cannot freeze the engine
(its scheduler shares the event loop); look-arounds and back-references are refused with a
message, and the pattern itself is at most ``GREP_PATTERN_MAX_CHARS`` long.

Mounting (done by the engine's app)::

    server = create_mcp_server("http://127.0.0.1:8288")
    app.mount("/mcp", server.streamable_http_app())      # stateless, JSON answers, path "/"
    # and inside the app's lifespan:  async with server.session_manager.run(): ...
"""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path
from typing import Any

import httpx
import re2
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from .limits import GREP_PATTERN_MAX_CHARS

DOCS_DIR = Path(__file__).resolve().parents[2] / "docs"
HTTP_TIMEOUT_S = 10.0
EVENT_KEY = "lab"
# Runs are created when the event is ingested; allow a short grace for a busy engine.
RUN_LOOKUP_GRACE_S = 1.0
SUCCESS_STATUSES = {"Completed", "Skipped"}
FAILURE_STATUSES = {"Failed", "Cancelled", "Overflowed"}
TERMINAL_STATUSES = SUCCESS_STATUSES | FAILURE_STATUSES
MAX_WAIT_S = 600.0
MAX_OUTPUT_CHARS = 4000
# The real server's list_functions (its REST v2 GetFunctions): appId required, 20 a page, 100 max.
FUNCTIONS_DEFAULT_LIMIT = 20
FUNCTIONS_MAX_LIMIT = 100

RUN_QUERY = """
query($id: String!) {
  run(runID: $id) {
    id status queuedAt startedAt endedAt output
    function { slug name }
    trace {
      childrenSpans {
        name status stepOp stepID attempts memoized startedAt endedAt outputID
        stepInfo {
          __typename
          ... on SleepStepInfo { sleepUntil }
          ... on WaitForEventStepInfo { eventName expression timeout foundEventID timedOut }
          ... on InvokeStepInfo { functionID runID timedOut }
        }
      }
    }
  }
}"""
SPAN_OUTPUT_QUERY = """
query($id: String!) { runTraceSpanOutputByID(outputID: $id) { data error { message name } } }"""
FUNCTIONS_QUERY = "query { functions { id slug name triggers { type value } app { name } } }"


def functions_page(functions: list[dict], app_id: str, cursor: str, limit: int) -> dict:
    """One page of ``app_id``'s functions in the real server's shape (``data``, ``page``).

    As the real server answers (its REST v2 GetFunctions, JSON without empty fields): ``id``
    and ``slug`` are the app-relative function id the SDK declared (``"approval"``, not
    ``"labtest-approval"``); ``data`` is absent when there is none and ``page.hasMore`` when
    false; pages run in the engine's internal-id order and ``page.cursor`` is the last
    function's internal id. The real answer's ``configuration`` block is not reproduced.
    """
    if not app_id:
        raise ToolError("App ID is required: pass appId, the app's id (the SDK client's app_id)")
    limit = limit or FUNCTIONS_DEFAULT_LIMIT
    if not 1 <= limit <= FUNCTIONS_MAX_LIMIT:
        raise ToolError(f"Limit must be between 1 and {FUNCTIONS_MAX_LIMIT}")
    mine = sorted((f for f in functions if (f.get("app") or {}).get("name") == app_id),
                  key=lambda f: f["id"])
    if cursor:
        if cursor not in {f["id"] for f in mine}:
            raise ToolError("Cursor is invalid: use page.cursor from the previous answer")
        mine = [f for f in mine if f["id"] > cursor]
    page, has_more = mine[:limit], len(mine) > limit
    answer: dict[str, Any] = {}
    if page:
        answer["data"] = [_function_record(f, app_id) for f in page]
    answer["metadata"] = {"fetchedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    answer["page"] = {"limit": limit}
    if has_more:
        answer["page"] = {"cursor": page[-1]["id"], "hasMore": True, "limit": limit}
    return answer


def _function_record(function: dict, app_id: str) -> dict:
    slug = function["slug"].removeprefix(app_id + "-")
    return {"app": {"id": app_id}, "id": slug, "name": function["name"], "slug": slug,
            "triggers": [{"type": str(t.get("type") or "").upper(), "value": t.get("value")}
                         for t in function.get("triggers") or []]}


class LabMCPServer(MCPServer):
    """An MCPServer whose HTTP app defaults suit mounting at ``/mcp`` in the engine.

    Stateless with JSON answers like the real dev server, so any client (curl, Claude Code,
    OpenCode) can call it without holding a session; the route is "/" inside the mount.
    """

    def streamable_http_app(self, **settings: Any):  # type: ignore[override]
        settings.setdefault("streamable_http_path", "/")
        settings.setdefault("json_response", True)
        settings.setdefault("stateless_http", True)
        return super().streamable_http_app(**settings)


class EngineAPI:
    """Small async client for the engine's HTTP API; every call has a bounded timeout."""

    def __init__(self, base: str, timeout: float = HTTP_TIMEOUT_S) -> None:
        self.base = base.rstrip("/")
        self.timeout = timeout

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        url = self.base + path
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                resp = await client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise ToolError(f"The engine at {self.base} did not answer {method} {path}: "
                            f"{exc!r}. Is it running?") from exc
        try:
            body = resp.json() if resp.content else None
        except ValueError:
            body = resp.text
        # REST v1 GETs answer HTTP 200 with the real status in the body (a dev-server quirk).
        status = body.get("status") if isinstance(body, dict) else None
        if resp.status_code >= 400 or (isinstance(status, int) and status >= 400):
            detail = body.get("error") if isinstance(body, dict) else body
            raise ToolError(f"{method} {path} failed ({status or resp.status_code}): {detail}")
        return body

    async def gql(self, query: str, variables: dict | None = None) -> dict:
        body = await self.request("POST", "/v0/gql",
                                  json={"query": query, "variables": variables or {}})
        if body.get("errors"):
            messages = "; ".join(e.get("message", str(e)) for e in body["errors"])
            raise ToolError(f"GraphQL error: {messages}")
        return body.get("data") or {}

    async def run_record(self, run_id: str) -> dict:
        return (await self.request("GET", f"/v1/runs/{run_id}"))["data"]

    async def event_run_ids(self, event_id: str) -> list[str]:
        runs = (await self.request("GET", f"/v1/events/{event_id}/runs"))["data"] or []
        return [r["run_id"] for r in runs]

    async def functions(self) -> list[dict]:
        return (await self.gql(FUNCTIONS_QUERY)).get("functions") or []


class NotesLibrary:
    """Read-only access to the workbook's notes: ``notes/**/*.md`` and top-level ``*.md``."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def paths(self) -> list[str]:
        if not self.root.is_dir():
            return []
        found = list(self.root.glob("*.md")) + list((self.root / "notes").rglob("*.md"))
        return sorted(p.relative_to(self.root).as_posix() for p in found if self._allowed(p))

    def _allowed(self, path: Path) -> bool:
        resolved = path.resolve()
        if resolved.suffix != ".md" or not resolved.is_file():
            return False
        if resolved.parent == self.root:
            return True
        return resolved.is_relative_to(self.root / "notes")

    def resolve(self, rel: str) -> Path:
        if not rel or rel.startswith(("/", "\\")) or ".." in Path(rel).parts:
            raise ToolError(f"{rel!r} is not a doc path; use a path from list_docs "
                            "such as 'notes/virtual-clock.md'.")
        candidate = self.root / rel
        if not self._allowed(candidate):
            # A bare name like "virtual-clock.md" is accepted for a note in notes/.
            in_notes = self.root / "notes" / rel
            if self._allowed(in_notes):
                return in_notes.resolve()
            raise ToolError(f"no doc {rel!r}. Available: {', '.join(self.paths())}")
        return candidate.resolve()

    def title(self, path: Path) -> str:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("#"):
                return line.lstrip("#").strip()
        return path.stem

    def grep(self, pattern: str, limit: int) -> list[dict]:
        if len(pattern) > GREP_PATTERN_MAX_CHARS:
            raise ToolError(f"the pattern is {len(pattern)} characters long; at most "
                            f"{GREP_PATTERN_MAX_CHARS}")
        options = re2.Options()
        options.case_sensitive = False
        options.log_errors = False
        try:
            regex = re2.compile(pattern, options)
        except re2.error as exc:
            reason = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(
                exc.args[0], bytes) else str(exc)
            raise ToolError(f"{pattern!r} is not a valid regular expression here: {reason} "
                            "(RE2 syntax: no look-arounds or back-references)") from None
        hits: list[dict] = []
        # The learner-facing notes first: with the default limit an agent's grep must reach
        # them before the longer reference pages (engine contract, lab API) fill the answer.
        for rel in sorted(self.paths(), key=lambda rel: not rel.startswith("notes/")):
            lines = (self.root / rel).read_text(encoding="utf-8").splitlines()
            for number, line in enumerate(lines, start=1):
                if regex.search(line):
                    hits.append({"path": rel, "line": number, "text": line.strip()})
                    if len(hits) >= limit:
                        return hits
        return hits


def _valid_seed(seed: str) -> bool:
    """The ``x-inngest-event-id-seed`` form: ``<unix ms>,<base64 of 10 bytes>``."""
    parts = seed.split(",")
    if len(parts) != 2 or not parts[0].isdigit() or int(parts[0]) <= 0:
        return False
    try:
        return len(base64.b64decode(parts[1], validate=True)) == 10
    except ValueError:
        return False


def _clip(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_OUTPUT_CHARS:
        return text
    return text[:MAX_OUTPUT_CHARS] + f"... ({len(text) - MAX_OUTPUT_CHARS} more characters)"


def _check_wait(seconds: float, name: str) -> float:
    if not 0 < seconds <= MAX_WAIT_S:
        raise ToolError(f"{name} must be between 0 and {MAX_WAIT_S:.0f} seconds, got {seconds}")
    return float(seconds)


async def _steps(api: EngineAPI, spans: list[dict]) -> list[dict]:
    steps = []
    for span in spans:
        step = {"name": span["name"], "op": span.get("stepOp"), "status": span["status"],
                "attempts": span.get("attempts"), "memoized": span.get("memoized", False),
                "startedAt": span.get("startedAt"), "endedAt": span.get("endedAt")}
        info = dict(span.get("stepInfo") or {})
        if info.pop("__typename", None):
            step["info"] = info
        if span.get("outputID"):
            out = (await api.gql(SPAN_OUTPUT_QUERY, {"id": span["outputID"]})
                   ).get("runTraceSpanOutputByID") or {}
            if out.get("error"):
                step["error"] = out["error"]
            if out.get("data") is not None:
                step["output"] = _clip(out["data"])
        steps.append(step)
    return steps


async def _wait_for_runs(api: EngineAPI, run_ids: list[str], timeout: float,
                         interval: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        runs = {}
        for run_id in run_ids:
            record = await api.run_record(run_id)
            runs[run_id] = {"status": record["status"], "output": record.get("output"),
                            "endedAt": record.get("ended_at")}
        done = all(r["status"] in TERMINAL_STATUSES for r in runs.values())
        if done or time.monotonic() >= deadline:
            break
        await asyncio.sleep(min(interval, max(0.0, deadline - time.monotonic())))
    failed = [i for i, r in runs.items() if r["status"] in FAILURE_STATUSES]
    pending = [i for i, r in runs.items() if r["status"] not in TERMINAL_STATUSES]
    if pending:
        message = (f"{len(pending)} of {len(runs)} run(s) still running after {timeout:g} s "
                   "(on a virtual clock, advance it with POST /lab/v1/clock/advance).")
    elif failed:
        message = f"All runs finished; {len(failed)} failed or were cancelled."
    else:
        message = "All runs finished successfully."
    return {"runs": runs, "done": not pending, "timedOut": bool(pending),
            "failed": failed, "message": message}


def create_mcp_server(api_base: str, docs_dir: Path | str = DOCS_DIR,
                      event_key: str | None = None) -> LabMCPServer:
    """The MCP server for the engine at ``api_base`` (e.g. ``http://127.0.0.1:8288``);
    ``event_key`` is the key the engine requires on ``POST /e``, if any."""
    api = EngineAPI(api_base)
    send_key = event_key or EVENT_KEY
    notes = NotesLibrary(Path(docs_dir))
    server = LabMCPServer(
        name="inngest-lab",
        instructions="Tools for the Production Worker Lab's embedded Inngest engine: send "
                     "events, list functions, watch runs, invoke functions, and search "
                     "the workbook's notes.")

    @server.tool(description="Send an event to the engine; returns its id and the ids of "
                             "the runs it started. A non-object data is wrapped as "
                             "{'value': data}. eventIdSeed: an x-inngest-event-id-seed "
                             "('<ms>,<base64 10 bytes>') or else an event id for dedup.")
    async def send_event(name: str, data: Any = None, user: dict | None = None,
                         eventIdSeed: str | None = None) -> dict:  # noqa: N803
        if not name or not name.strip():
            raise ToolError("name is required, e.g. 'app/user.created'")
        payload = data if isinstance(data, dict) or data is None else {"value": data}
        event: dict[str, Any] = {"name": name, "data": payload or {}}
        if user is not None:
            event["user"] = user
        headers = {}
        if eventIdSeed and _valid_seed(eventIdSeed):
            headers["x-inngest-event-id-seed"] = eventIdSeed
        elif eventIdSeed:
            event["id"] = eventIdSeed
        sent = await api.request("POST", f"/e/{send_key}", json=event, headers=headers)
        event_id = sent["ids"][0]
        run_ids = await api.event_run_ids(event_id)
        deadline = time.monotonic() + RUN_LOOKUP_GRACE_S
        while not run_ids and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            run_ids = await api.event_run_ids(event_id)
        message = (f"Event {name!r} sent; it started {len(run_ids)} run(s)." if run_ids else
                   f"Event {name!r} sent; no run started yet (no trigger matched, the event "
                   "id was already used, or debounce/batching delays the run).")
        answer = {"eventId": event_id, "status": "sent", "message": message}
        if run_ids:  # the real server leaves runIds out when no run has started yet
            answer["runIds"] = run_ids
        return answer

    @server.tool(description="List one app's functions (appId: the app's id, e.g. the SDK "
                             "client's app_id) with their triggers; page with cursor/limit "
                             f"(limit 1-{FUNCTIONS_MAX_LIMIT}, default {FUNCTIONS_DEFAULT_LIMIT}).")
    async def list_functions(appId: str = "", cursor: str = "",  # noqa: N803
                             limit: int = 0) -> dict:
        return functions_page(await api.functions(), appId, cursor, limit)

    @server.tool(description="A run's status, output and step timeline (each step's "
                             "status, attempts, errors, outputs; memoized = memo hit).")
    async def get_run_status(runId: str) -> dict:  # noqa: N803
        run = (await api.gql(RUN_QUERY, {"id": runId})).get("run")
        if not run:
            raise ToolError(f"no run {runId!r}")
        spans = (run.get("trace") or {}).get("childrenSpans") or []
        return {"runId": run["id"], "status": run["status"],
                "function": (run.get("function") or {}).get("slug"),
                "queuedAt": run.get("queuedAt"), "startedAt": run.get("startedAt"),
                "endedAt": run.get("endedAt"), "output": _clip(run.get("output")),
                "steps": await _steps(api, spans)}

    @server.tool(description="Wait until all the given runs finish or timeout seconds pass "
                             "(pollInterval in ms). Completed/Skipped are success; "
                             "Failed/Cancelled are failure.")
    async def poll_run_status(runIds: list[str], timeout: float = 30,  # noqa: N803
                              pollInterval: int = 1000) -> dict:  # noqa: N803
        if not runIds:
            raise ToolError("give at least one run id in runIds")
        if not 10 <= pollInterval <= 60_000:
            raise ToolError("pollInterval is in ms, between 10 and 60000")
        return await _wait_for_runs(api, runIds, _check_wait(timeout, "timeout"),
                                    pollInterval / 1000)

    @server.tool(description="Invoke a function by slug, id or name with data, wait up to "
                             "timeout seconds and return its run id, status and output.")
    async def invoke_function(functionId: str, data: dict | None = None,  # noqa: N803
                              user: dict | None = None, timeout: float = 30) -> dict:
        wait_s = _check_wait(timeout, "timeout")
        functions = await api.functions()
        match = [f for f in functions if functionId in (f["slug"], f["id"], f["name"])]
        if not match:
            known = ", ".join(f["slug"] for f in functions) or "none synced"
            raise ToolError(f"no function {functionId!r} (known: {known})")
        slug = match[0]["slug"]
        before = await _run_ids_of(api, slug)
        answer = await api.gql(
            "mutation($slug: String!, $data: Map, $user: Map) {"
            " invokeFunction(functionSlug: $slug, data: $data, user: $user) }",
            {"slug": slug, "data": data or {}, "user": user})
        run_id = answer.get("invokeFunction") if isinstance(
            answer.get("invokeFunction"), str) else None
        deadline = time.monotonic() + RUN_LOOKUP_GRACE_S
        while run_id is None:
            new = [r for r in await _run_ids_of(api, slug) if r not in before]
            if new:
                run_id = new[0]
            elif time.monotonic() >= deadline:
                raise ToolError(f"{slug} was invoked but no run appeared")
            else:
                await asyncio.sleep(0.05)
        result = await _wait_for_runs(api, [run_id], wait_s, 0.2)
        run = result["runs"][run_id]
        return {"functionId": slug, "runId": run_id, "status": run["status"],
                "output": run["output"], "message": result["message"]}

    @server.tool(description="Search the workbook's notes with a regular expression "
                             "(case-insensitive); returns matching lines with paths.")
    async def grep_docs(pattern: str, limit: int = 10) -> dict:
        if limit < 1:
            raise ToolError("limit must be at least 1")
        hits = notes.grep(pattern, min(limit, 200))
        return {"pattern": pattern, "matches": hits, "count": len(hits)}

    @server.tool(description="Read one of the workbook's notes by the path list_docs gives.")
    async def read_doc(path: str) -> str:
        return notes.resolve(path).read_text(encoding="utf-8")

    @server.tool(description="List the workbook's notes (path and title).")
    async def list_docs() -> dict:
        docs = [{"path": rel, "title": notes.title(notes.root / rel)} for rel in notes.paths()]
        return {"docs": docs, "count": len(docs)}

    return server


async def _run_ids_of(api: EngineAPI, slug: str) -> list[str]:
    body = await api.request("GET", "/lab/v1/runs", params={"function": slug})
    return [r["run_id"] for r in body.get("data") or []]


__all__ = ["create_mcp_server", "LabMCPServer", "NotesLibrary", "EngineAPI"]
