"""The six Inngest agent skills in .claude/skills: valid SKILL.md files, small enough for an
agent's context, Python-first, and never loaded into the Worker's own agent."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from chat_agent.agents import build_support_agent
from chat_agent.skills import SKILLS_DIR, WORKER_SKILLS, load_skills, parse_skill

INNGEST_SKILLS = ("inngest-setup", "inngest-events", "inngest-durable-functions",
                  "inngest-steps", "inngest-flow-control", "inngest-middleware")
# A conservative estimate (English prose and code average about 4 characters per token).
MAX_TOKENS = 3000
CHARS_PER_TOKEN = 3.5


@pytest.mark.parametrize("name", INNGEST_SKILLS)
def test_skill_file_is_valid_and_small(name):
    path = SKILLS_DIR / name / "SKILL.md"
    skill = parse_skill(path)  # raises SkillError with the file name when malformed
    # The Agent Skills rules Claude Code and OpenCode apply: the name is lowercase words
    # joined by hyphens and equals the folder name; the description is at most 1024 chars.
    assert skill.name == name and re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", skill.name)
    assert len(skill.description) <= 1024
    assert skill.description.startswith("Use when"), "the description says when to load it"
    estimate = len(path.read_text(encoding="utf-8")) / CHARS_PER_TOKEN
    assert estimate < MAX_TOKENS, f"{name} is about {estimate:.0f} tokens"


@pytest.mark.parametrize("name", INNGEST_SKILLS)
def test_skill_code_is_python_for_inngest_py_05(name):
    body = parse_skill(SKILLS_DIR / name / "SKILL.md").body
    blocks = re.findall(r"```(\w*)\n(.*?)```", body, flags=re.DOTALL)
    python = [code for lang, code in blocks if lang == "python"]
    assert python, f"{name} has no Python example"
    assert not [lang for lang, _ in blocks if lang in ("ts", "typescript", "js", "javascript")]
    for code in python:
        ast.parse(_as_module(code))  # every example is syntactically valid Python
    text = "\n".join(python)
    # TypeScript spellings that do not exist in inngest-py.
    for wrong in ("createFunction", "waitForEvent", "sendEvent", "sleepUntil", "batchEvents"):
        assert wrong not in text, f"{name} uses the TypeScript name {wrong}"


def _as_module(code: str) -> str:
    # Examples may show a function body (`await ...`, `return`) or a trailing `...`:
    # wrap them in an async function so they parse as the code they stand for.
    indented = "".join(f"    {line}\n" for line in code.splitlines())
    return f"async def _example():\n{indented}"


def test_the_course_corrections_are_in_the_skills():
    text = {n: (SKILLS_DIR / n / "SKILL.md").read_text(encoding="utf-8") for n in INNGEST_SKILLS}
    assert "no keyword" in text["inngest-steps"] and "functools.partial" in text["inngest-steps"]
    assert "inngest.StepError" in text["inngest-durable-functions"]
    assert "executing steps, not runs" in text["inngest-flow-control"]
    assert "TZ=Europe/Paris" in text["inngest-events"]
    assert "from the start" in text["inngest-durable-functions"]  # bulk Replay
    assert "`async` is the **incoming** event" in text["inngest-steps"]


def test_the_worker_loads_only_its_own_three_skills():
    on_disk = {p.parent.name for p in Path(SKILLS_DIR).glob("*/SKILL.md")}
    assert set(INNGEST_SKILLS) | set(WORKER_SKILLS) <= on_disk
    assert [s.name for s in load_skills()] == list(WORKER_SKILLS)
    instructions = build_support_agent().instructions
    for name in INNGEST_SKILLS:
        assert name not in instructions
    assert "## Skill: escalate-with-context" in instructions
