"""lab.mcp / lab_support.mcp_client: the engine's MCP tools called from kernel-side code.

The calls go through a real MCP client over streamable HTTP to the engine's own /mcp mount,
with an SDK app synced to it, as a coding agent (or a notebook's verify step) would make them.
"""

from __future__ import annotations

import asyncio
import socket

import lab_helpers as h
import pytest

from lab_support import mcp_client
from lab_support.lab_object import Lab
from lab_support.mcp_client import MCPError, MCPToolError

pytestmark = pytest.mark.timeout(180)

CLASSIC_TOOLS = {"send_event", "list_functions", "get_run_status", "poll_run_status",
                 "invoke_function", "grep_docs", "read_doc", "list_docs"}


@pytest.fixture(scope="module")
def lab(engine):
    the_lab = Lab()
    the_lab.start(h.FUNCTIONS, engine=engine.url, quiet=True)
    try:
        yield the_lab
    finally:
        the_lab.stop()


@pytest.fixture(scope="module")
def url(lab):
    return mcp_client.mcp_url(lab.api.url)


def test_list_tools_reads_names_and_parameters(url):
    tools = {t.name: t for t in mcp_client.list_tools(url)}
    assert CLASSIC_TOOLS <= set(tools)
    poll = {p.name: p for p in tools["poll_run_status"].params}
    assert poll["runIds"].required and poll["runIds"].type == "list[string]"
    assert not poll["timeout"].required and poll["timeout"].default == 30
    assert tools["get_run_status"].signature() == "get_run_status(runId: string)"


def test_send_poll_and_inspect_a_run(url, tmp_path):
    sent = mcp_client.call_tool(url, "send_event", {
        "name": "lab/order", "data": {"customer": "c-mcp", "log_dir": str(tmp_path)}})
    assert sent["eventId"] and len(sent["runIds"]) == 1
    run_id = sent["runIds"][0]
    polled = mcp_client.call_tool(url, "poll_run_status",
                                  {"runIds": [run_id], "timeout": 60, "pollInterval": 50})
    assert polled["done"] and polled["runs"][run_id]["status"] == "Completed", polled
    status = mcp_client.call_tool(url, "get_run_status", {"runId": run_id})
    assert [s["name"] for s in status["steps"]][:2] == ["load", "charge"]
    assert h.executed(tmp_path, run_id) == ["load", "charge", "receipt"]


def test_text_answers_come_back_as_text(url):
    doc = mcp_client.call_tool(url, "read_doc", {"path": "notes/mcp.md"})
    assert isinstance(doc, str) and doc.startswith("# The engine's MCP endpoint")
    listed = mcp_client.call_tool(url, "list_functions", {"appId": "labtest"})
    assert "order" in [f["slug"] for f in listed["data"]]


def test_bad_requests_are_refused_before_anything_is_sent(url):
    with pytest.raises(MCPError, match="no tool 'list_function'.*list_functions"):
        mcp_client.call_tool(url, "list_function")
    with pytest.raises(MCPError, match=r"missing runId.*get_run_status\(runId: string\)"):
        mcp_client.call_tool(url, "get_run_status")
    with pytest.raises(MCPError, match="unknown run_id"):
        mcp_client.call_tool(url, "get_run_status", {"runId": "x", "run_id": "x"})
    with pytest.raises(MCPError, match="Name a tool"):
        mcp_client.call_tool(url, "")


def test_a_tool_error_carries_the_servers_message(url):
    with pytest.raises(MCPToolError) as caught:
        mcp_client.call_tool(url, "get_run_status", {"runId": "01J00000000000000000000000"})
    assert caught.value.tool == "get_run_status"
    assert "no run" in caught.value.message


def test_unreachable_silent_and_non_mcp_servers_fail_clearly(lab):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    with pytest.raises(MCPError, match="No MCP server answers"):
        mcp_client.call_tool(f"http://127.0.0.1:{free}/mcp", "list_functions")
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        port = silent.getsockname()[1]
        with pytest.raises(MCPError, match="did not answer list_functions within 1 s"):
            mcp_client.call_tool(f"http://127.0.0.1:{port}/mcp", "list_functions", timeout=1)
    with pytest.raises(MCPError, match="did not answer as an MCP server"):
        mcp_client.list_tools(lab.api.url + "/v1/events")


def test_callable_from_inside_a_running_event_loop(url):
    """A Jupyter kernel runs an event loop; the call must still be a plain sync call."""

    async def cell():
        return mcp_client.call_tool(url, "list_docs")

    listed = asyncio.run(cell())
    assert "notes/mcp.md" in [d["path"] for d in listed["docs"]]


def test_a_waiting_tool_gets_its_own_timeout_on_top():
    assert mcp_client._deadline_for({"timeout": 120}) == mcp_client.DEFAULT_TIMEOUT_S + 120
    assert mcp_client._deadline_for({"timeout": True}) == mcp_client.DEFAULT_TIMEOUT_S
    assert mcp_client._deadline_for({}) == mcp_client.DEFAULT_TIMEOUT_S


def test_lab_mcp_shows_the_request_and_the_answer(lab, capsys):
    answer = lab.mcp("list_functions", appId="labtest")
    assert "approval" in [f["slug"] for f in answer["data"]]
    out = capsys.readouterr().out
    assert '→ list_functions {"appId": "labtest"}' in out and '"approval"' in out

    with pytest.raises(MCPToolError):
        lab.mcp("get_run_status", runId="no-such-run")
    assert "error: Error executing tool get_run_status" in capsys.readouterr().out


def test_lab_mcp_without_a_tool_lists_the_tools(lab, capsys):
    tools = lab.mcp()
    assert CLASSIC_TOOLS <= {t["name"] for t in tools}
    grep = next(t for t in tools if t["name"] == "grep_docs")
    assert [p["name"] for p in grep["parameters"]] == ["pattern", "limit"]
    assert "grep_docs(pattern: string, limit: integer = 10)" in capsys.readouterr().out


def test_before_start_lab_mcp_uses_inngest_dev(lab, monkeypatch):
    monkeypatch.setenv("INNGEST_DEV", lab.api.url)
    fresh = Lab()
    assert fresh.api is None
    answer = fresh.mcp("grep_docs", pattern="NonRetriableError", limit=1)
    assert answer["count"] == 1
    monkeypatch.delenv("INNGEST_DEV")
    assert mcp_client.mcp_url() == "http://127.0.0.1:8288/mcp"


def test_html_view_escapes_and_labels():
    page = mcp_client.call_html("http://x/mcp", "send_event", {"name": "<b>"}, {"ok": "<i>"}, None)
    assert "&lt;b&gt;" in page and "&lt;i&gt;" in page and "<code>send_event</code>" in page
    failed = mcp_client.call_html("http://x/mcp", "read_doc", {}, None, "no doc <x>")
    assert "error" in failed and "no doc &lt;x&gt;" in failed
    tool = mcp_client.ToolInfo("read_doc", "Read a <doc>.",
                               [mcp_client.Param("path", "string", True)])
    table = mcp_client.tools_html("http://x/mcp", [tool])
    assert "<code>read_doc</code>" in table and "Read a &lt;doc&gt;." in table
