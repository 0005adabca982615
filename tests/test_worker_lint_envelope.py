"""The envelope checker passes on tasks.py and catches a version that breaks each rule."""

from __future__ import annotations

import pytest

from chat_agent import lint_envelope
from chat_agent.lint_envelope import DEFAULT_TASKS, check_internals, check_tasks

SOURCE = DEFAULT_TASKS.read_text()


def _variant(tmp_path, old: str, new: str):
    assert old in SOURCE, f"test is stale: {old!r} is no longer in tasks.py"
    path = tmp_path / "tasks.py"
    path.write_text(SOURCE.replace(old, new, 1))
    return {f.rule for f in check_tasks(path)}


def test_the_shipped_envelope_passes(capsys):
    assert check_tasks(DEFAULT_TASKS) == []
    assert check_internals(lint_envelope.DEFAULT_INTERNALS) == []
    assert lint_envelope.main([]) == 0
    assert "all pass" in capsys.readouterr().out


@pytest.mark.parametrize("old, new, rule", [
    # the agent called directly in the handler, not in step.run
    ('result = await ctx.step.run("run-agent", steps.run_agent, customer, thread, email, '
     'source_id)',
     "result = await steps.run_agent(customer, thread, email, source_id)",
     "agent-outside-step"),
    # a fan-out event without its idempotency id
    ('id=f"health-check-{c[\'id\']}-{day.isoformat()}",', "", "send-without-id"),
    # the HITL gate without a timeout
    ('event="escalation/decision.made", timeout=HITL_TIMEOUT,',
     'event="escalation/decision.made",', "hitl-no-timeout"),
    # a timeout branch that no longer writes its audit row
    ('await ctx.step.run("audit-timeout", steps.audit, "escalation_posted_via_timeout",',
     'await ctx.step.run("post-timeout", steps.audit, "escalation_posted_via_timeout",',
     "hitl-unaudited-timeout"),
])
def test_each_broken_rule_is_reported(tmp_path, old, new, rule):
    assert rule in _variant(tmp_path, old, new)


def test_event_dict_without_id_is_reported(tmp_path):
    path = tmp_path / "tasks.py"
    path.write_text("async def f(client):\n"
                    "    await client.send([{'name': 'a/b', 'data': {}}])\n")
    assert [f.rule for f in check_tasks(path)] == ["send-without-id"]


def test_internal_module_importing_inngest_is_reported(tmp_path, capsys):
    (tmp_path / "agents.py").write_text("import inngest\n")
    (tmp_path / "tools.py").write_text("from chat_agent.inngest_client import inngest_client\n")
    (tmp_path / "tasks.py").write_text("import inngest\n")  # the envelope may
    findings = check_internals([tmp_path])
    assert sorted(f.path.rsplit("/", 1)[-1] for f in findings) == ["agents.py", "tools.py"]
    assert lint_envelope.main([str(DEFAULT_TASKS), "--internals", str(tmp_path)]) == 1
    assert "internals-import-inngest" in capsys.readouterr().out
