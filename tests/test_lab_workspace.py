"""``lab_support.workspace``: the learner's own Worker package of the Decision notebooks.

Where the workspace is, fresh imports after an edit, the course's checkpoints (equal to the
solution cells they stand for, and never over a learner's finished file when asked), errors
surfacing in the kernel, and the deferred app that imports the package only once the lab has
chosen its engine. The notebooks themselves run in test_notebooks_execute.py.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import httpx
import pytest

from lab_support import workspace
from lab_support.host import ThreadedHost
from lab_support.workspace import DeferredApp, Workspace, WorkspaceError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def ws(tmp_path, monkeypatch):
    monkeypatch.delenv(workspace.WORKSPACE_ENV, raising=False)
    package = f"ws_pkg_{abs(hash(tmp_path)) % 10**8}"
    made = Workspace(package, root=tmp_path / "workspace")
    yield made
    made.forget()
    if str(made.root) in sys.path:
        sys.path.remove(str(made.root))


def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "notebooks").mkdir(parents=True)
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    return root


def test_the_environment_variable_wins(tmp_path, monkeypatch):
    monkeypatch.setenv(workspace.WORKSPACE_ENV, str(tmp_path / "elsewhere"))
    assert workspace.locate(project(tmp_path) / "notebooks") == tmp_path / "elsewhere"


def test_a_workspace_beside_the_notebook_comes_first(tmp_path, monkeypatch):
    monkeypatch.delenv(workspace.WORKSPACE_ENV, raising=False)
    submission = project(tmp_path) / "notebooks"
    (submission / "workspace").mkdir()  # a graded folder carries its workspace
    assert workspace.locate(submission) == submission / "workspace"


def test_otherwise_the_project_root_then_beside_the_notebook(tmp_path, monkeypatch):
    monkeypatch.delenv(workspace.WORKSPACE_ENV, raising=False)
    root = project(tmp_path)
    assert workspace.locate(root / "notebooks") == root / "workspace"
    (root / "workspace").rmdir()
    (root / "workspace").write_text("not a folder")  # the root cannot hold one (read-only)
    assert workspace.locate(root / "notebooks") == root / "notebooks" / "workspace"


def test_a_bad_package_name_is_refused(tmp_path):
    with pytest.raises(WorkspaceError, match="package name"):
        Workspace("my-worker", root=tmp_path)


def solution_cell(notebook: str, filename: str) -> str:
    text = (ROOT / "solutions" / notebook).read_text(encoding="utf-8")
    match = re.search(r"```python\n%%writefile \{ws\}/my_worker/" + re.escape(filename)
                      + r"\n(.*?)\n```", text, re.S)
    assert match, f"{notebook} has no %%writefile cell for {filename}"
    return match.group(1)


@pytest.mark.parametrize("filename", ["inngest_client.py", "agent_step.py", "email_tasks.py"])
def test_checkpoint_d3_is_the_decision_3_solution(filename):
    checkpoint = (workspace.FILES_DIR / "d3" / filename).read_text(encoding="utf-8")
    assert checkpoint.rstrip("\n") == solution_cell("18_d3_wrap_agent_exercise.md", filename)


def test_checkpoint_keeps_a_finished_file_and_replaces_an_unfinished_one(ws, capsys):
    ws.checkpoint("d3")
    (ws.package_dir / "agent_step.py").write_text("async def run_agent(*a):\n    return {}\n")
    (ws.package_dir / "email_tasks.py").write_text("raise NotImplementedError\n")
    written = ws.checkpoint("d3", keep_yours=True)
    assert "agent_step.py" not in written and "email_tasks.py" in written
    assert "return {}" in (ws.package_dir / "agent_step.py").read_text()
    assert "kept yours: agent_step.py" in capsys.readouterr().out
    assert ws.checkpoint("d3", only=["inngest_client.py"]) == ["inngest_client.py"]
    with pytest.raises(WorkspaceError, match="no checkpoint"):
        ws.checkpoint("d9")


def test_load_reads_the_files_again_after_an_edit(ws):
    (ws.package_dir / "__init__.py").write_text("")
    (ws.package_dir / "part.py").write_text("VALUE = 1\n")
    assert ws.load("part").VALUE == 1
    (ws.package_dir / "part.py").write_text("VALUE = 2\n")
    assert ws.load("part").VALUE == 2


def test_an_unfinished_part_stops_the_cell_with_its_own_error(ws):
    ws.checkpoint("scaffold")
    ws.checkpoint("d3", only=["inngest_client.py"])
    (ws.package_dir / "unfinished.py").write_text("# YOUR CODE HERE\nraise NotImplementedError\n")
    with pytest.raises(NotImplementedError):
        ws.build_app(["unfinished"])


def test_the_deferred_app_imports_the_package_when_the_host_starts(ws, monkeypatch):
    ws.checkpoint("scaffold")
    ws.checkpoint("d3", only=["inngest_client.py"])
    (ws.package_dir / "hello.py").write_text(
        "from fastapi import APIRouter\n\nfrom .inngest_client import inngest_client\n\n"
        "router = APIRouter()\nfunctions = []\n\n\n@router.get('/hello')\n"
        "def hello():\n    return {'engine': inngest_client.api_origin}\n")
    ws.parts = ["hello"]
    ws.build_app()  # built once in the kernel (as ws.serve does), before the engine is known
    app = DeferredApp(ws)
    assert not hasattr(app.state, "inngest_functions")  # nothing built yet
    monkeypatch.setenv("INNGEST_DEV", "http://127.0.0.1:9")  # what lab.start sets
    host = ThreadedHost(app, lifespan="on").start(timeout=30)
    try:
        answer = httpx.get(host.url + "/hello", timeout=10).json()
    finally:
        host.stop()
    assert answer == {"engine": "http://127.0.0.1:9"}
    assert app.state.inngest_functions == []


def test_a_database_of_your_own_is_never_reset(monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/neon")
    assert workspace.reset_worker_data() is None
    assert "left as it is" in capsys.readouterr().out
