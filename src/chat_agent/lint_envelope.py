"""Check the operational-envelope rules of CLAUDE.md by reading syntax trees (no imports).

    python -m chat_agent.lint_envelope [path/to/tasks.py] [--internals DIR ...]

Rules:
  internals-import-inngest  the Worker's internals (agent, tools, skills, MCP server) never
                            import inngest; only the envelope modules may
  agent-outside-step        every agent invocation inside an Inngest function runs in step.run
  send-without-id           every event sent (inngest.Event(...) or an event dict) has an id
  hitl-no-timeout           every step.wait_for_event has an explicit timeout
  hitl-unaudited-timeout    ...and a timeout branch (result is None) that runs an audit step
Exit status 1 when any rule is broken; each finding names the file, line and rule.
"""

from __future__ import annotations

import argparse
import ast
import sys
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_TASKS = PACKAGE_DIR / "tasks.py"
ENVELOPE_MODULES = {"tasks.py", "envelope_steps.py", "inngest_client.py", "serve.py",
                    "postmark.py", "lint_envelope.py"}
DEFAULT_INTERNALS = [PACKAGE_DIR, PACKAGE_DIR.parent / "customer_data_mcp"]
AGENT_CALLS = {"answer_email", "draft_outreach", "run_agent", "run_health_agent", "run",
               "run_streamed", "run_sync"}
AGENT_OWNERS = {"Runner"}  # Runner.run / run_streamed / run_sync


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: [{self.rule}] {self.message}"


def _call_name(node: ast.Call) -> tuple[str | None, str | None]:
    """(owner, name) of a call: ``steps.run_agent(...)`` → ("steps", "run_agent")."""
    func = node.func
    if isinstance(func, ast.Name):
        return None, func.id
    if isinstance(func, ast.Attribute):
        owner = func.value
        owner_name = owner.id if isinstance(owner, ast.Name) else (
            owner.attr if isinstance(owner, ast.Attribute) else None)
        return owner_name, func.attr
    return None, None


def _is_step_call(node: ast.Call, method: str) -> bool:
    owner, name = _call_name(node)
    return name == method and owner == "step"


def _is_agent_call(node: ast.Call) -> bool:
    owner, name = _call_name(node)
    if name in ("run", "run_streamed", "run_sync"):
        return owner in AGENT_OWNERS
    return name in AGENT_CALLS


def _is_inngest_function(fn: ast.AST) -> bool:
    return isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(
        isinstance(d, ast.Call) and _call_name(d)[1] == "create_function"
        for d in fn.decorator_list)


def _check_agent_calls(fn, path: str) -> list[Finding]:
    findings = []
    inside_step: set[int] = set()
    for node in ast.walk(fn):
        if isinstance(node, ast.Call) and _is_step_call(node, "run"):
            for arg in node.args[1:]:
                inside_step.update(id(n) for n in ast.walk(arg))
    for node in ast.walk(fn):
        if isinstance(node, ast.Call) and _is_agent_call(node) and id(node) not in inside_step:
            findings.append(Finding(path, node.lineno, "agent-outside-step",
                                    f"{fn.name} calls the agent ({ast.unparse(node.func)}) "
                                    "outside step.run; wrap it so a crash never loses it"))
        # step.run("x", run_agent) passes the function: fine. Calling it in the arg is not.
    return findings


def _check_sends(tree: ast.AST, path: str) -> list[Finding]:
    findings = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        owner, name = _call_name(node)
        if name == "Event" and owner in (None, "inngest"):
            if not any(k.arg == "id" for k in node.keywords):
                findings.append(Finding(path, node.lineno, "send-without-id",
                                        "inngest.Event(...) without id=: a retry would send "
                                        "it twice"))
        if name in ("send", "send_sync", "send_event"):
            for arg in node.args + [k.value for k in node.keywords]:
                for d in ast.walk(arg):
                    if isinstance(d, ast.Dict):
                        keys = {k.value for k in d.keys if isinstance(k, ast.Constant)}
                        if "name" in keys and "id" not in keys:
                            findings.append(Finding(path, d.lineno, "send-without-id",
                                                    "event dict without an 'id' key"))
    return findings


def _names_none_test(test: ast.AST, var: str) -> bool:
    """``var is None`` or ``not var``."""
    if isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) \
            and test.left.id == var and isinstance(test.ops[0], ast.Is) \
            and isinstance(test.comparators[0], ast.Constant) and test.comparators[0].value is None:
        return True
    return isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not) \
        and isinstance(test.operand, ast.Name) and test.operand.id == var


def _runs_audit_step(body: list[ast.stmt]) -> bool:
    for stmt in body:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Call) and _is_step_call(node, "run") and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and "audit" in str(first.value):
                    return True
    return False


def _check_waits(fn, path: str) -> list[Finding]:
    findings = []
    for node in ast.walk(fn):
        if not (isinstance(node, ast.Assign) or isinstance(node, ast.Expr)):
            continue
        value = node.value.value if isinstance(node.value, ast.Await) else node.value
        if not (isinstance(value, ast.Call) and _is_step_call(value, "wait_for_event")):
            continue
        if not any(k.arg == "timeout" for k in value.keywords):
            findings.append(Finding(path, value.lineno, "hitl-no-timeout",
                                    "step.wait_for_event without timeout="))
        targets = node.targets if isinstance(node, ast.Assign) else []
        var = targets[0].id if targets and isinstance(targets[0], ast.Name) else None
        audited = var is not None and any(
            isinstance(n, ast.If) and _names_none_test(n.test, var) and _runs_audit_step(n.body)
            for n in ast.walk(fn))
        if not audited:
            findings.append(Finding(path, value.lineno, "hitl-unaudited-timeout",
                                    "no `if <result> is None:` branch that runs an audit step"))
    return findings


def check_tasks(path: Path) -> list[Finding]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    findings = _check_sends(tree, str(path))
    for fn in ast.walk(tree):
        if _is_inngest_function(fn):
            findings += _check_agent_calls(fn, str(path))
            findings += _check_waits(fn, str(path))
    return findings


def check_internals(directories) -> list[Finding]:
    findings = []
    for directory in directories:
        for path in sorted(Path(directory).glob("*.py")):
            if path.name in ENVELOPE_MODULES:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                modules = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                for module in modules:
                    if module == "inngest" or module.startswith("inngest.") \
                            or module.endswith(("tasks", "inngest_client")):
                        findings.append(Finding(str(path), node.lineno,
                                                "internals-import-inngest",
                                                f"internal module imports {module}"))
    return findings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chat_agent.lint_envelope",
                                     description="Check the operational-envelope rules.")
    parser.add_argument("tasks", nargs="?", type=Path, default=DEFAULT_TASKS)
    parser.add_argument("--internals", nargs="*", type=Path, default=DEFAULT_INTERNALS)
    args = parser.parse_args(argv)
    if not args.tasks.exists():
        parser.error(f"{args.tasks} does not exist")
    findings = check_tasks(args.tasks) + check_internals(args.internals)
    for finding in findings:
        print(finding)
    print(f"{len(findings)} problem(s) found" if findings else "envelope rules: all pass")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
