"""The agent, offline: MCP tools over the seeded database, the offline model, guardrails, Skills."""

from __future__ import annotations

import asyncio

import pytest
from agents import Agent, InputGuardrailTripwireTriggered, RunConfig, Runner

from chat_agent.agents import answer_email, build_support_agent, draft_outreach
from chat_agent.guardrails import InputRefused, prepare_input, screen_input
from chat_agent.offline_model import BANNER, OfflineLabModel
from chat_agent.skills import SkillError, load_skills, parse_skill
from customer_data_mcp import store
from customer_data_mcp.client import CustomerData, ToolInputError

# The Worker fixtures (worker_db, envelope, ...) with one Postgres for the whole session.
pytest_plugins = ["worker_helpers"]

REFUND_EMAIL = "Hi, my refund hasn't arrived and I'm getting worried about my upcoming bill."
EXPECTED_TOOLS = {"load_customer", "load_thread", "list_customers", "recent_activity",
                  "save_draft_reply", "record_audit", "find_similar_cases", "mark_outreach"}


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, timeout=120))


@pytest.mark.parametrize("transport", ["inprocess", "stdio"])
def test_mcp_server_lists_tools_and_reports_errors(worker_db, transport):
    async def scenario():
        async with CustomerData(transport=transport) as cd:
            tools = {t.name for t in (await cd._client.list_tools()).tools}
            customer = await cd.call("load_customer", customer_id="c-4429")
            with pytest.raises(ToolInputError, match="No customer with id 'c-missing'"):
                await cd.call("load_customer", customer_id="c-missing")
            return tools, customer

    tools, customer = run(scenario())
    assert EXPECTED_TOOLS <= tools
    assert customer["id"] == "c-4429"


def test_agent_answers_a_seeded_email_end_to_end_with_an_audit_row(worker_db):
    async def scenario():
        result = await answer_email("c-test-1", REFUND_EMAIL, source_id="t-1")
        async with CustomerData() as cd:
            draft = await cd.call("save_draft_reply", customer_id="c-test-1",
                                  body=result["draft"], thread_id="t-c-test-1")
            await cd.call("record_audit", action="email_drafted", customer_id="c-test-1",
                          payload={"draft_id": draft["id"]})
        return result, draft

    result, draft = run(scenario())
    assert result["draft"].startswith(BANNER) and result["offline"] is True
    assert result["tool_calls"][:3] == ["load_customer", "load_thread", "find_similar_cases"]
    assert "Test" in result["draft"]  # the customer's name came from load_customer
    assert "refund" in result["draft"].lower()  # a similar resolved refund case was reused
    assert result["escalations"] == []
    rows = store.audit_rows("email_drafted", "c-test-1")
    assert rows[-1]["payload"]["draft_id"] == draft["id"]
    assert store.load_thread("c-test-1")["drafts"][-1]["body"] == result["draft"]


def test_offline_model_is_deterministic(worker_db):
    first = run(answer_email("c-test-2", REFUND_EMAIL, source_id="same"))
    second = run(answer_email("c-test-2", REFUND_EMAIL, source_id="same"))
    assert first == second


@pytest.mark.parametrize("body, reason", [
    ("I have asked my bank for a chargeback on the last invoice.", "chargeback"),
    ("My lawyer will take legal action if this is not fixed.", "legal_threat"),
    ("Please refund $1,200 for the outage.", "refund_over_500"),
])
def test_escalation_triggers_request_an_escalation_with_a_stable_key(worker_db, body, reason):
    result = run(answer_email("c-4429", body, source_id="email-7"))
    assert [e["reason"] for e in result["escalations"]] == [reason]
    again = run(answer_email("c-4429", body, source_id="email-7"))
    assert again["escalations"][0]["request_id"] == result["escalations"][0]["request_id"]
    assert "senior colleague" in result["draft"]


def test_small_refund_is_not_escalated(worker_db):
    result = run(answer_email("c-4429", "Could you refund $40 for the extra seat?",
                              source_id="e"))
    assert result["escalations"] == []


def test_health_agent_drafts_outreach_from_recent_activity(worker_db):
    result = run(draft_outreach("c-test-3"))
    assert result["draft"].startswith(BANNER + " Proactive outreach draft")
    assert result["tool_calls"] == ["load_customer", "recent_activity"]


def test_unknown_customer_gets_a_clear_answer_and_no_draft(worker_db):
    result = run(answer_email("c-ghost", "hello", source_id="x"))
    assert "could not load customer c-ghost" in result["draft"]


def test_runner_run_non_streamed_works_with_the_offline_model(worker_db):
    agent = Agent(name="plain", instructions="Answer briefly.", model=OfflineLabModel())
    result = run(Runner.run(agent, "Customer id: c-4429\nEmail body:\nHello",
                            run_config=RunConfig(tracing_disabled=True)))
    assert result.final_output.startswith(BANNER)


def test_guardrails_redact_refuse_and_trip():
    screened = screen_input("card 4111 1111 1111 1111, key sk-abcdefghijklmnopqrstuv, "
                            "password: hunter2")
    assert "4111" not in screened.text and "hunter2" not in screened.text
    assert sorted(screened.findings) == ["api_key", "card_number", "password"]
    assert screen_input("order 1234 5678 9012 3456").findings == []  # fails Luhn: not a card
    heavy = " ".join(["4111 1111 1111 1111", "5555 5555 5555 4444", "123-45-6789",
                      "078-05-1120"])
    with pytest.raises(InputRefused, match="Refused"):
        prepare_input(heavy)

    agent = build_support_agent(model=OfflineLabModel())
    with pytest.raises(InputGuardrailTripwireTriggered):
        run(Runner.run(agent, "Customer id: c-4429\nEmail body:\nmy password: hunter2"))


def test_skills_load_with_front_matter(tmp_path):
    skills = {s.name: s for s in load_skills()}
    assert set(skills) == {"summarize-ticket", "find-similar-cases", "escalate-with-context"}
    assert "customer/escalation.requested" in skills["escalate-with-context"].body
    bad = tmp_path / "SKILL.md"
    bad.write_text("---\nname: x\n---\nbody")
    with pytest.raises(SkillError, match="description"):
        parse_skill(bad)


def _run_module(*args, timeout=120):
    import os
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ))


def test_cli_once_answers_through_the_stdio_mcp_server(worker_db):
    out = _run_module("chat_agent.cli", "--customer-id", "c-4429", "--once",
                      "My lawyer says we should sue you over this invoice.")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(BANNER)
    assert "escalation requested: legal_threat -> customer/escalation.requested" in out.stdout
    refused = _run_module("chat_agent.cli", "--once", "4111 1111 1111 1111 5555 5555 5555 4444 "
                          "123-45-6789 078-05-1120")
    assert refused.returncode == 2 and "Refused" in refused.stderr


def test_migrate_command_reports_status(worker_db):
    out = _run_module("customer_data_mcp.migrate", "status")
    assert out.returncode == 0, out.stderr
    assert "customers" in out.stdout and "audit_log" in out.stdout


def test_mcp_server_over_streamable_http(worker_db):
    import os
    import subprocess
    import sys

    import httpx

    from lab_support.host import free_port
    from worker_helpers import wait_until

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "customer_data_mcp.server", "--http",
                             "--port", str(port)], env=dict(os.environ),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        def listening():
            try:
                httpx.get(f"http://127.0.0.1:{port}/mcp", timeout=1)
                return True
            except httpx.TransportError:
                return proc.poll() is not None  # stop waiting if it died
        wait_until(listening, timeout=60, message="the HTTP MCP server to listen")
        assert proc.poll() is None, proc.stderr.read()

        async def scenario():
            async with CustomerData(url=f"http://127.0.0.1:{port}/mcp") as cd:
                return await cd.call("load_customer", customer_id="c-test-1")

        assert run(scenario())["id"] == "c-test-1"
    finally:
        proc.terminate()
        proc.wait(10)
