"""The course's "use grep_docs / list_docs / read_doc" prompts find answers in docs/notes.

The notes are served over streamable HTTP at /mcp and searched with lab.mcp's client, with
the tool's default limit, exactly as an agent's first grep would be.
"""

from __future__ import annotations

import pytest
from mcp_helpers import serve_mcp

from lab_support import mcp_client
from lab_support.devserver.mcp_tools import DOCS_DIR

UNREACHABLE = "http://127.0.0.1:9"  # the docs tools never need the engine

# (pattern a Try-with-AI prompt sends to grep_docs, the note that must answer it)
COURSE_GREPS = [
    ("replay", "notes/replay-and-cancel.md"),
    ("rerun from step", "notes/replay-and-cancel.md"),
    ("NonRetriableError", "notes/steps-and-memoization.md"),
    ("StepError", "notes/steps-and-memoization.md"),
    ("step.run", "notes/steps-and-memoization.md"),
    ("concurrency", "notes/flow-control.md"),
    ("throttle", "notes/flow-control.md"),
    ("idempotency", "notes/idempotency.md"),
    ("wait_for_event", "notes/waiting-for-events.md"),
    ("if_exp", "notes/waiting-for-events.md"),
    ("cancel", "notes/replay-and-cancel.md"),
    ("batch", "notes/batching.md"),
    ("embedding", "notes/batching.md"),
    ("transform", "notes/webhooks-and-transforms.md"),
    ("TriggerEvent", "notes/webhooks-and-transforms.md"),
    ("ai.infer", "notes/ai-infer.md"),
    ("TZ=", "notes/cron-timezones.md"),
    ("timezone", "notes/cron-timezones.md"),
]


@pytest.fixture(scope="module")
def url():
    with serve_mcp(UNREACHABLE, docs_dir=DOCS_DIR) as base:
        yield base + "/mcp"


@pytest.mark.parametrize(("pattern", "note"), COURSE_GREPS)
def test_course_grep_finds_the_note(url, pattern, note):
    found = mcp_client.call_tool(url, "grep_docs", {"pattern": pattern})  # default limit
    assert note in {m["path"] for m in found["matches"]}, found


def test_list_docs_then_read_doc_leads_to_the_if_exp_syntax(url):
    """Concept 8: scan the tree for the wait_for_event page, then read it for if_exp."""
    docs = mcp_client.call_tool(url, "list_docs")["docs"]
    page = next(d["path"] for d in docs if "wait_for_event" in d["title"])
    text = mcp_client.call_tool(url, "read_doc", {"path": page})
    assert "if_exp=" in text and "`async`" in text and "`event`" in text


@pytest.mark.parametrize("note", ["batching.md", "webhooks-and-transforms.md", "ai-infer.md",
                                  "cron-timezones.md", "waiting-for-events.md",
                                  "idempotency.md"])
def test_each_new_note_is_one_page_with_a_lab_call(note):
    text = (DOCS_DIR / "notes" / note).read_text(encoding="utf-8")
    assert text.startswith("# ")
    assert len(text.split()) < 800, f"{note} is longer than a page"
    assert "lab." in text, f"{note} shows no lab call"
