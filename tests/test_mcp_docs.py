"""The MCP docs tools (grep_docs, read_doc, list_docs) over the workbook's notes.

No engine needed: the docs tools read files only. One test goes through real streamable
HTTP with the server mounted at /mcp, the way the engine mounts it.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from mcp import Client

from lab_support.devserver.mcp_tools import DOCS_DIR, NotesLibrary, create_mcp_server
from mcp_helpers import call_tools, serve_mcp, text_of

UNREACHABLE = "http://127.0.0.1:9"  # the docs tools must not need the engine


@pytest.fixture
def notes_dir(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "clock.md").write_text("# Clock notes\nAdvance the clock.\n")
    (tmp_path / "notes" / "deep").mkdir()
    (tmp_path / "notes" / "deep" / "replay.md").write_text("# Replay\nrerun from a step\n")
    (tmp_path / "contract.md").write_text("# Contract\nGET /lab/v1/clock\n")
    (tmp_path / "secret.txt").write_text("not a doc")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "hidden.md").write_text("# Hidden\noutside notes\n")
    return tmp_path


def in_process(calls, docs_dir=DOCS_DIR):
    async def run():
        async with Client(create_mcp_server(UNREACHABLE, docs_dir=docs_dir)) as client:
            return [await client.call_tool(name, args) for name, args in calls]
    return asyncio.run(asyncio.wait_for(run(), 30))


def test_library_lists_only_notes_and_top_level_markdown(notes_dir):
    lib = NotesLibrary(notes_dir)
    assert lib.paths() == ["contract.md", "notes/clock.md", "notes/deep/replay.md"]


@pytest.mark.parametrize("bad", ["../etc/passwd", "/etc/passwd", "notes/../secret.txt",
                                 "secret.txt", "other/hidden.md", "", "notes/missing.md"])
def test_read_doc_refuses_paths_outside_the_notes(notes_dir, bad):
    from mcp.server.mcpserver.exceptions import ToolError
    with pytest.raises(ToolError):
        NotesLibrary(notes_dir).resolve(bad)


def test_read_doc_refuses_a_symlink_that_leaves_the_folder(notes_dir):
    outside = notes_dir.parent / f"{notes_dir.name}-outside.md"
    outside.write_text("# Outside\n")
    (notes_dir / "notes" / "link.md").symlink_to(outside)
    lib = NotesLibrary(notes_dir)
    assert "notes/link.md" not in lib.paths()
    from mcp.server.mcpserver.exceptions import ToolError
    with pytest.raises(ToolError):
        lib.resolve("notes/link.md")


def test_tools_through_an_mcp_client(notes_dir):
    listed, grep, read, bare, refused, bad_regex = in_process([
        ("list_docs", {}),
        ("grep_docs", {"pattern": "clock", "limit": 10}),
        ("read_doc", {"path": "notes/deep/replay.md"}),
        ("read_doc", {"path": "clock.md"}),  # a bare note name resolves inside notes/
        ("read_doc", {"path": "../secret.txt"}),
        ("grep_docs", {"pattern": "([unclosed"}),
    ], docs_dir=notes_dir)
    docs = json.loads(text_of(listed))["docs"]
    assert {d["path"]: d["title"] for d in docs} == {
        "contract.md": "Contract", "notes/clock.md": "Clock notes",
        "notes/deep/replay.md": "Replay"}
    matches = json.loads(text_of(grep))["matches"]
    assert [(m["path"], m["line"]) for m in matches] == [  # notes first, then the rest
        ("notes/clock.md", 1), ("notes/clock.md", 2), ("contract.md", 2)]
    assert "rerun from a step" in text_of(read)
    assert text_of(bare).startswith("# Clock notes")
    assert refused.is_error and "not a doc path" in text_of(refused)
    assert bad_regex.is_error and "regular expression" in text_of(bad_regex)


def test_grep_docs_honours_the_limit(notes_dir):
    (result,) = in_process([("grep_docs", {"pattern": ".", "limit": 2})], docs_dir=notes_dir)
    assert json.loads(text_of(result))["count"] == 2


def test_workbook_notes_cover_the_engine_topics():
    """The shipped notes answer the questions the course sends learners to grep for."""
    listed, replay, clock = in_process([
        ("list_docs", {}), ("grep_docs", {"pattern": r"rerun|replay", "limit": 50}),
        ("grep_docs", {"pattern": "to_next_timer"})])
    paths = {d["path"] for d in json.loads(text_of(listed))["docs"]}
    assert {"notes/engine.md", "notes/lab-api.md", "notes/virtual-clock.md",
            "notes/flow-control.md", "notes/replay-and-cancel.md"} <= paths
    assert any(m["path"] == "notes/replay-and-cancel.md"
               for m in json.loads(text_of(replay))["matches"])
    assert json.loads(text_of(clock))["count"] >= 1


def test_served_over_streamable_http_at_mcp(notes_dir):
    with serve_mcp(UNREACHABLE, docs_dir=notes_dir) as base:
        for url in (base + "/mcp", base + "/mcp/"):
            listed, unreachable = call_tools(url, [("list_docs", {}),
                                                  ("list_functions", {"appId": "labtest"})])
            assert json.loads(text_of(listed))["count"] == 3
            # Engine tools fail with a message that says what is wrong, not a crash.
            assert unreachable.is_error and "did not answer" in text_of(unreachable)
