"""The course notebooks are built from one source, committed clean, and follow one shape.

Fast checks with no engine and no kernel; executing the notebooks is in
test_notebooks_execute.py.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import build_notebooks  # noqa: E402
from lab_support.checks import is_hidden_check_cell  # noqa: E402

CONCEPT_NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
EXERCISES = sorted((ROOT / "exercises").glob("*.ipynb"))
PILOT = ["00_quick_win", "01_events_vs_requests", "02_cron_triggers", "03_webhook_triggers",
         "04_idempotency"]
ALL = CONCEPT_NOTEBOOKS + SOLUTIONS + EXERCISES


def code(nb) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "code")


def markdown(nb) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def test_the_pilot_set_is_complete():
    names = {p.stem for p in CONCEPT_NOTEBOOKS}
    assert set(PILOT) <= names
    assert {f"{n}_exercise" for n in PILOT} <= {p.stem for p in SOLUTIONS}
    assert [p.name for p in EXERCISES] == [p.name for p in SOLUTIONS]


def test_notebooks_match_their_sources():
    assert build_notebooks.main(["--check"]) == 0, "run: python tools/build_notebooks.py"


@pytest.mark.parametrize("path", ALL, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_committed_without_outputs_and_valid(path):
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:80]
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", ALL, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_cell_blocks_a_headless_run(path):
    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        source = cell.source
        if "# YOUR CODE HERE" not in source:  # exercises hold placeholders, not Python errors
            ast.parse(source)
        assert not re.search(r"\binput\(", source), f"input() blocks headless runs: {source[:80]}"
        assert "time.sleep(" not in source, "wait on the engine with lab.wait, not time.sleep"


@pytest.mark.parametrize("path", CONCEPT_NOTEBOOKS, ids=lambda p: p.name)
def test_concept_notebook_follows_the_teaching_pattern(path):
    nb = nbformat.read(str(path), as_version=4)
    text, source = markdown(nb).lower(), code(nb)
    assert "learning goals" in text or "by the end of this notebook" in text
    assert "break it" in text, "one deliberate 'break it' experiment"
    assert "## summary" in text
    assert re.search(r"\]\((0\d_[a-z_]+\.ipynb)\)|exercises/0\d_", markdown(nb)), "link onward"
    assert source.count("lab.predict(") >= 2, "PRIMM prompts as predict widgets"
    assert "lab.watch(" in source or "lab.trace(" in source, "show the run view"
    assert "lab.start(" in source and "lab.stop()" in source


@pytest.mark.parametrize("path", CONCEPT_NOTEBOOKS, ids=lambda p: p.name)
def test_every_prediction_has_answer_and_explanation(path):
    nb = nbformat.read(str(path), as_version=4)
    calls = [node for cell in nb.cells if cell.cell_type == "code"
             for node in ast.walk(ast.parse(cell.source))
             if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "predict"]
    assert calls
    ids = []
    for call in calls:
        keywords = {k.arg for k in call.keywords}
        assert {"answer", "explain"} <= keywords, ast.unparse(call)[:120]
        ids.append(ast.literal_eval(call.args[0]))
    assert len(ids) == len(set(ids)), f"prediction ids repeat: {ids}"


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_solution_has_tasks_checks_and_parameters(path):
    nb = nbformat.read(str(path), as_version=4)
    source = code(nb)
    assert source.count("# BEGIN SOLUTION") == source.count("# END SOLUTION") >= 2
    assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells)
    visible = [c for c in nb.cells if c.cell_type == "code" and not is_hidden_check_cell(c)]
    assert any("lab.check(" in c.source for c in visible), "learners see at least one check"
    assert any(is_hidden_check_cell(c) and "lab.check(" in c.source for c in nb.cells)


def test_parser_reads_tags_splits_and_fences():
    cells = build_notebooks.parse_cells(
        "# Title\n\n```python tags=parameters, x\na = 1\n```\nText\n+++\nMore\n"
        "```text\nnot code\n```\n```python\nb = 2\n```\n")
    kinds = [(c.cell_type, c.source) for c in cells]
    assert kinds == [("markdown", "# Title"), ("code", "a = 1"), ("markdown", "Text"),
                     ("markdown", "More\n```text\nnot code\n```"), ("code", "b = 2")]
    assert cells[1].metadata["tags"] == ["parameters", "x"]


def test_parser_rejects_an_unclosed_code_cell():
    with pytest.raises(build_notebooks.SourceError, match="never closed"):
        build_notebooks.parse_cells("intro\n```python\nx = 1\n", "demo.md")
