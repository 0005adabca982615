"""The coding-agent MCP configs at the repo root: .mcp.json (Claude Code) and opencode.json.

Each config's `customer-data` command is started the way an agent starts it (from the repo
root, with only a minimal environment) and listed through an MCP client; each config's
`inngest-dev` URL is checked against a running engine's /mcp mount on a free port.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from mcp import Client, StdioServerParameters

from lab_support import mcp_client

# The Worker fixtures (a seeded database on the session's embedded Postgres).
pytest_plugins = ["worker_helpers"]
pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[1]
CALL_TIMEOUT_S = 60
ENGINE_TOOLS = {"send_event", "list_functions", "get_run_status", "poll_run_status",
                "invoke_function", "grep_docs", "read_doc", "list_docs"}


def claude_config() -> dict:
    return json.loads((ROOT / ".mcp.json").read_text(encoding="utf-8"))


def opencode_config() -> dict:
    return json.loads((ROOT / "opencode.json").read_text(encoding="utf-8"))


def customer_data_command(kind: str) -> list[str]:
    """The command line each agent runs for `customer-data` (cwd: the repo root)."""
    if kind == "claude":
        entry = claude_config()["mcpServers"]["customer-data"]
        return [entry["command"], *entry.get("args", [])]
    return list(opencode_config()["mcp"]["customer-data"]["command"])


def inngest_dev_url(kind: str) -> str:
    if kind == "claude":
        return claude_config()["mcpServers"]["inngest-dev"]["url"]
    return opencode_config()["mcp"]["inngest-dev"]["url"]


def test_claude_code_config_shape():
    servers = claude_config()["mcpServers"]
    assert set(servers) == {"inngest-dev", "customer-data"}
    assert servers["inngest-dev"] == {"type": "http", "url": "http://127.0.0.1:8288/mcp"}
    local = servers["customer-data"]
    assert local["type"] == "stdio" and isinstance(local["command"], str)
    assert all(isinstance(a, str) for a in local["args"])


def test_opencode_config_shape():
    config = opencode_config()
    assert config["$schema"] == "https://opencode.ai/config.json"
    servers = config["mcp"]
    assert set(servers) == {"inngest-dev", "customer-data"}
    remote, local = servers["inngest-dev"], servers["customer-data"]
    assert remote == {"type": "remote", "url": "http://127.0.0.1:8288/mcp", "enabled": True}
    # OpenCode wants one command array (no `args`) and rejects unknown keys.
    assert local["type"] == "local" and local["enabled"] is True
    assert set(local) <= {"type", "command", "environment", "enabled", "timeout"}
    assert all(isinstance(part, str) for part in local["command"])


def test_both_configs_start_the_same_customer_data_server():
    assert customer_data_command("claude") == customer_data_command("opencode")


def _params(command: list[str], env: dict | None = None) -> StdioServerParameters:
    executable = ROOT / command[0]
    if not executable.exists():
        pytest.skip(f"{command[0]} does not exist: run `make setup` first")
    # env=None gives the MCP SDK's minimal environment (HOME, PATH, ...): no PYTHONPATH,
    # so the server must be importable from the configured interpreter alone.
    return StdioServerParameters(command=str(executable), args=command[1:], cwd=str(ROOT),
                                 env=env)


def _session(params: StdioServerParameters, calls: list[tuple[str, dict]]):
    async def run():
        async with Client(params, read_timeout_seconds=CALL_TIMEOUT_S) as client:
            names = sorted(t.name for t in (await client.list_tools()).tools)
            results = [await client.call_tool(name, args) for name, args in calls]
            return names, results
    return asyncio.run(asyncio.wait_for(run(), CALL_TIMEOUT_S * (1 + len(calls))))


def _in_process_tool_names() -> list[str]:
    from customer_data_mcp.server import build_server

    async def run():
        async with Client(build_server()) as client:
            return sorted(t.name for t in (await client.list_tools()).tools)
    return asyncio.run(asyncio.wait_for(run(), CALL_TIMEOUT_S))


@pytest.mark.parametrize("kind", ["claude", "opencode"])
def test_customer_data_command_starts_and_lists_its_tools(kind):
    names, _ = _session(_params(customer_data_command(kind)), [])
    assert "load_customer" in names and "record_audit" in names
    assert names == _in_process_tool_names()


def test_customer_data_command_reads_the_database_url(worker_db):
    """With DATABASE_URL in the agent's environment the server answers from that database."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/"),
           "DATABASE_URL": worker_db}
    _, (result,) = _session(_params(customer_data_command("claude"), env),
                            [("load_customer", {"customer_id": "c-4429"})])
    assert not result.is_error, result.content
    assert json.loads(result.content[0].text)["id"] == "c-4429"


def test_without_database_url_the_server_finds_the_repos_embedded_database(tmp_path):
    """db.py derives .lab/pg from the installed package, not from the working directory."""
    command = customer_data_command("claude")
    executable = ROOT / command[0]
    if not executable.exists():
        pytest.skip(f"{command[0]} does not exist: run `make setup` first")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/")}
    found = subprocess.run(
        [str(executable), "-c", "from customer_data_mcp import db; print(db.default_pg_dir())"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=True)
    assert Path(found.stdout.strip()) == ROOT / ".lab" / "pg"


@pytest.mark.parametrize("kind", ["claude", "opencode"])
def test_inngest_dev_url_matches_the_engines_mount(kind, engine):
    configured = urlsplit(inngest_dev_url(kind))
    assert (configured.scheme, configured.hostname, configured.port, configured.path) == (
        "http", "127.0.0.1", 8288, "/mcp")
    running = urlsplit(engine.url)
    same_shape = urlunsplit((configured.scheme, f"{configured.hostname}:{running.port}",
                             configured.path, "", ""))
    assert same_shape == mcp_client.mcp_url(engine.url)
    tools = {t.name for t in mcp_client.list_tools(same_shape)}
    assert ENGINE_TOOLS <= tools
