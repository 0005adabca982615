"""Call the dev server's MCP tools from a notebook: the mechanism behind ``lab.mcp``.

The course checks each build step by having the coding agent call the dev server's MCP
tools (``list_functions``, ``send_event``, ``poll_run_status`` ...). ``call_tool`` makes the
same call through a real MCP client (the ``mcp`` package, streamable HTTP), so a notebook
sees what the agent would see, from the embedded engine or a real ``inngest dev`` alike.

How a call runs: a Jupyter kernel already has an asyncio loop running, so each call runs
its MCP session on a fresh loop in a short-lived worker thread, and the calling thread
waits for it with a deadline. One session per call - initialize, list the tools (to check
the tool name and its required arguments before anything is sent), call, close - because
the server is stateless and a notebook cell may run at any time.

Answers come back parsed: the tool's structured result when it declares one
(``{"result": x}`` gives ``x``), else its text read as JSON, else the text itself.
``show_call`` / ``show_tools`` display the request and the answer (HTML and text).
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import threading
from dataclasses import dataclass, field
from typing import Any

from mcp import Client
from mcp import MCPError as ProtocolError

from .display import show
from .engines import DEFAULT_DEV_URL, dev_url_from_env

DEFAULT_TIMEOUT_S = 30.0
# A tool that itself waits (poll_run_status, invoke_function) gets its own timeout on top.
JOIN_GRACE_S = 5.0
MAX_SHOWN_CHARS = 4000
MAX_TOOL_PAGES = 20


class MCPError(RuntimeError):
    """The MCP server could not be reached, did not answer in time, or was asked for a
    tool or arguments it does not have. Nothing was executed by the tool."""


class MCPToolError(MCPError):
    """The tool ran and answered with an error; ``message`` is the server's text."""

    def __init__(self, tool: str, arguments: dict, message: str) -> None:
        super().__init__(f"{tool} answered with an error: {message}")
        self.tool, self.arguments, self.message = tool, arguments, message


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    required: bool
    default: Any = None


@dataclass(frozen=True)
class ToolInfo:
    name: str
    description: str
    params: list[Param] = field(default_factory=list)
    open_params: bool = False  # the schema accepts parameters it does not list
    output_wrapped: bool = False  # the structured result is {"result": value}

    def signature(self) -> str:
        parts = []
        for p in self.params:
            text = f"{p.name}: {p.type}"
            parts.append(text if p.required else f"{text} = {json.dumps(p.default)}")
        return f"{self.name}({', '.join(parts)})"


def mcp_url(engine_url: str | None = None) -> str:
    """The MCP address of an engine: ``<engine>/mcp``; without one, the dev server named by
    ``INNGEST_DEV`` or ``http://127.0.0.1:8288``."""
    base = engine_url or dev_url_from_env(os.environ.get("INNGEST_DEV")) or DEFAULT_DEV_URL
    return base.rstrip("/") + "/mcp"


# ---------------------------------------------------------------------------- calls
def list_tools(url: str, timeout: float = DEFAULT_TIMEOUT_S) -> list[ToolInfo]:
    """The server's tools with their parameters (read from each tool's input schema)."""

    async def session(client: Client) -> list[ToolInfo]:
        return await _tools(client)

    return _run(url, session, timeout, what="list its tools")


def call_tool(url: str, tool: str, arguments: dict | None = None,
              timeout: float | None = None) -> Any:
    """Call ``tool`` with ``arguments``; returns the parsed answer or raises ``MCPError``
    (unreachable, timeout, unknown tool, bad arguments) / ``MCPToolError`` (the tool's own
    error). ``timeout`` defaults to 30 s plus the tool's own ``timeout`` argument, if any."""
    arguments = dict(arguments or {})
    if not isinstance(tool, str) or not tool:
        raise MCPError("Name a tool, e.g. lab.mcp('list_functions'); lab.mcp() lists them.")
    deadline = timeout if timeout is not None else _deadline_for(arguments)

    async def session(client: Client) -> Any:
        tools = {t.name: t for t in await _tools(client)}
        info = tools.get(tool)
        if info is None:
            raise MCPError(f"{url} has no tool {tool!r}. Its tools: {', '.join(sorted(tools))}.")
        _check_arguments(info, arguments)
        result = await client.call_tool(tool, arguments)
        text = "".join(getattr(part, "text", "") for part in result.content)
        if result.is_error:
            raise MCPToolError(tool, arguments, text or "(no message)")
        return _parse(info, result.structured_content, text)

    return _run(url, session, deadline, what=f"answer {tool}")


def _deadline_for(arguments: dict) -> float:
    own = arguments.get("timeout")
    extra = float(own) if isinstance(own, (int, float)) and not isinstance(own, bool) else 0.0
    return DEFAULT_TIMEOUT_S + max(0.0, extra)


def _run(url: str, session, timeout: float, *, what: str) -> Any:
    """Run ``session(client)`` on its own loop in a worker thread, with a deadline."""
    box: dict[str, Any] = {}

    async def main() -> Any:
        async with Client(url, read_timeout_seconds=timeout) as client:
            return await session(client)

    def target() -> None:
        try:
            box["value"] = asyncio.run(asyncio.wait_for(main(), timeout))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
            box["error"] = exc

    worker = threading.Thread(target=target, name="lab-mcp-call", daemon=True)
    worker.start()
    worker.join(timeout + JOIN_GRACE_S)
    if worker.is_alive():
        raise MCPError(f"The MCP server at {url} did not {what} within {timeout:g} s.")
    if "error" in box:
        raise _explain(box["error"], url, timeout, what) from box["error"]
    return box["value"]


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _is(exc: BaseException, name: str) -> bool:
    # The mcp package talks HTTP through its own httpx fork (httpx2), so its transport
    # errors are matched by class name, which both libraries share.
    return any(cls.__name__ == name for cls in type(exc).__mro__)


def _explain(exc: BaseException, url: str, timeout: float, what: str) -> BaseException:
    for leaf in _leaves(exc):
        if isinstance(leaf, MCPError):
            return leaf
        if _is(leaf, "ConnectError"):
            return MCPError(f"No MCP server answers at {url} ({leaf}). Start the engine "
                            "(lab.start(...), or `python -m lab_support.devserver`) or a dev "
                            "server, or pass the right address.")
        if isinstance(leaf, TimeoutError) or _is(leaf, "TimeoutException"):
            return MCPError(f"The MCP server at {url} did not {what} within {timeout:g} s.")
        if isinstance(leaf, ProtocolError):
            return MCPError(f"{url} did not answer as an MCP server ({leaf.message}). Is this "
                            "the dev server's /mcp address?")
        if _is(leaf, "HTTPError"):
            return MCPError(f"HTTP error talking to {url}: {leaf}")
    return exc


# ---------------------------------------------------------------------------- schemas
async def _tools(client: Client) -> list[ToolInfo]:
    found, cursor = [], None
    for _ in range(MAX_TOOL_PAGES):
        page = await client.list_tools(cursor=cursor)
        found.extend(_tool_info(t) for t in page.tools)
        cursor = page.next_cursor
        if cursor is None:
            break
    return found


def _tool_info(tool) -> ToolInfo:
    schema = tool.input_schema or {}
    props = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    params = [Param(name, _type_name(spec), name in required, (spec or {}).get("default"))
              for name, spec in props.items()]
    params.sort(key=lambda p: not p.required)  # required first, otherwise schema order
    output = getattr(tool, "output_schema", None) or {}
    wrapped = set(output.get("properties") or {}) == {"result"}
    return ToolInfo(tool.name, (tool.description or "").strip(), params,
                    open_params=schema.get("additionalProperties") is True,
                    output_wrapped=wrapped)


def _type_name(spec: dict | None) -> str:
    spec = spec or {}
    if "type" in spec:
        kind = spec["type"]
        if kind == "array":
            return f"list[{_type_name(spec.get('items'))}]"
        return "|".join(kind) if isinstance(kind, list) else str(kind)
    options = [_type_name(s) for s in spec.get("anyOf") or [] if s.get("type") != "null"]
    return "|".join(options) or "any"


def _check_arguments(info: ToolInfo, arguments: dict) -> None:
    names = {p.name for p in info.params}
    missing = [p.name for p in info.params if p.required and p.name not in arguments]
    unknown = [] if info.open_params else sorted(set(arguments) - names)
    problems = []
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown {', '.join(unknown)}")
    if problems:
        raise MCPError(f"{info.name}: {'; '.join(problems)}. It takes {info.signature()}.")


def _parse(info: ToolInfo, structured: Any, text: str) -> Any:
    if isinstance(structured, dict):
        if info.output_wrapped and set(structured) == {"result"}:
            return structured["result"]
        return structured
    try:
        return json.loads(text)
    except ValueError:
        return text


# ---------------------------------------------------------------------------- views
def _pretty(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, indent=2, default=str)
    if len(text) > MAX_SHOWN_CHARS:
        text = text[:MAX_SHOWN_CHARS] + f"\n… ({len(text) - MAX_SHOWN_CHARS} more characters)"
    return text


def call_text(url: str, tool: str, arguments: dict, answer: Any, error: str | None) -> str:
    request = json.dumps(arguments, default=str)
    reply = f"error: {error}" if error is not None else _pretty(answer)
    return f"MCP {url}\n→ {tool} {request}\n← {reply}"


def call_html(url: str, tool: str, arguments: dict, answer: Any, error: str | None) -> str:
    request = html.escape(json.dumps(arguments, indent=2, default=str))
    reply = html.escape(error if error is not None else _pretty(answer))
    colour = "#b00020" if error is not None else "inherit"
    label = "error" if error is not None else "answer"
    return (f"<div class='lab-mcp'><b>MCP</b> <code>{html.escape(tool)}</code> "
            f"<span style='color:#666'>at {html.escape(url)}</span>"
            f"<div style='margin-top:4px'>request</div><pre>{request}</pre>"
            f"<div style='color:{colour}'>{label}</div>"
            f"<pre style='color:{colour}'>{reply}</pre></div>")


def tools_text(url: str, tools: list[ToolInfo]) -> str:
    lines = [f"MCP tools at {url}"]
    lines += [f"  {t.signature()}\n      {t.description.splitlines()[0] if t.description else ''}"
              for t in tools]
    return "\n".join(lines)


def tools_html(url: str, tools: list[ToolInfo]) -> str:
    cell = "<td style='text-align:left'>{}</td>"
    rows = "".join(
        "<tr>" + cell.format(f"<code>{html.escape(t.name)}</code>")
        + cell.format("<code>" + html.escape(", ".join(_param_text(p) for p in t.params)) + "</code>")
        + cell.format(html.escape(t.description)) + "</tr>" for t in tools)
    return (f"<div class='lab-mcp-tools'><b>MCP tools</b> at {html.escape(url)}<table>"
            "<tr><th>tool</th><th>parameters</th><th>what it does</th></tr>"
            f"{rows}</table></div>")


def _param_text(p: Param) -> str:
    return f"{p.name}: {p.type}" if p.required else f"{p.name}: {p.type} = {json.dumps(p.default)}"


def show_call(url: str, tool: str, arguments: dict, timeout: float | None = None) -> Any:
    """Call the tool, show the request and the answer (or the tool's error), return the
    parsed answer. A tool error is shown, then raised as ``MCPToolError``."""
    try:
        answer = call_tool(url, tool, arguments, timeout=timeout)
    except MCPToolError as exc:
        show(text=call_text(url, tool, arguments, None, exc.message),
             html_text=call_html(url, tool, arguments, None, exc.message))
        raise
    show(text=call_text(url, tool, arguments, answer, None),
         html_text=call_html(url, tool, arguments, answer, None))
    return answer


def show_tools(url: str, timeout: float = DEFAULT_TIMEOUT_S) -> list[dict]:
    """List the server's tools (shown as a table); returns one dict per tool."""
    tools = list_tools(url, timeout)
    show(text=tools_text(url, tools), html_text=tools_html(url, tools))
    return [{"name": t.name, "description": t.description,
             "parameters": [{"name": p.name, "type": p.type, "required": p.required,
                             "default": p.default} for p in t.params]} for t in tools]


__all__ = [
    "MCPError",
    "MCPToolError",
    "Param",
    "ToolInfo",
    "call_tool",
    "list_tools",
    "mcp_url",
    "show_call",
    "show_tools",
]
