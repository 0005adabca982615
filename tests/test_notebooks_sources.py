"""The course notebooks are built from one source, committed clean, and follow one shape.

Fast checks with no engine and no kernel; executing the notebooks is in
test_notebooks_execute.py.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

from lab_support import notebook_pairs
from lab_support.checks import is_hidden_check_cell

ROOT = Path(__file__).resolve().parents[1]

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


def test_every_notebook_has_its_markdown_pair_and_they_agree():
    paired = {ipynb for _md, ipynb in notebook_pairs.pairs()}
    assert set(CONCEPT_NOTEBOOKS + SOLUTIONS) == paired, "each .ipynb needs its .md (and back)"
    drift = {str(ipynb.relative_to(ROOT)): notebook_pairs.differences(md, ipynb)
             for md, ipynb in notebook_pairs.pairs()}
    assert not {k: v for k, v in drift.items() if v}, "run: make notebooks"


@pytest.mark.parametrize("path", ALL, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_committed_without_outputs_and_valid(path):
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:80]
    assert nb.metadata["kernelspec"]["name"] == notebook_pairs.KERNELSPEC["name"], \
        "notebooks name the project's kernel"


@pytest.mark.parametrize("path", ALL, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_cell_blocks_a_headless_run(path):
    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        source = cell.source
        if "# YOUR CODE HERE" not in source:  # exercises hold placeholders, not Python errors
            # IPython's own rewrite: a %%writefile cell is Python once its magic is a call.
            ast.parse(TransformerManager().transform_cell(source))
        assert not re.search(r"\binput\(", source), f"input() blocks headless runs: {source[:80]}"
        assert "time.sleep(" not in source, "wait on the engine with lab.wait, not time.sleep"


@pytest.mark.parametrize("path", CONCEPT_NOTEBOOKS, ids=lambda p: p.name)
def test_concept_notebook_follows_the_teaching_pattern(path):
    nb = nbformat.read(str(path), as_version=4)
    text, source = markdown(nb).lower(), code(nb)
    assert "learning goals" in text or "by the end of this notebook" in text
    assert "break it" in text, "one deliberate 'break it' experiment"
    assert "## summary" in text
    assert re.search(r"\]\((\d\d_[a-z0-9_]+\.ipynb)\)|exercises/\d\d_", markdown(nb)), "link onward"
    assert source.count("lab.predict(") >= 2, "PRIMM prompts as predict widgets"
    assert "lab.watch(" in source or "lab.trace(" in source, "show the run view"
    assert "lab.start(" in source and "lab.stop()" in source


@pytest.mark.parametrize("path", CONCEPT_NOTEBOOKS, ids=lambda p: p.name)
def test_every_prediction_has_answer_and_explanation(path):
    nb = nbformat.read(str(path), as_version=4)
    calls = [node for cell in nb.cells if cell.cell_type == "code"
             for node in ast.walk(ast.parse(TransformerManager().transform_cell(cell.source)))
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


def test_an_edit_saved_in_jupyterlab_is_not_drift(tmp_path):
    """Saving from JupyterLab gives new ids and outputs; only content differences count."""
    md, ipynb = notebook_pairs.pairs()[0]
    (tmp_path / md.name).write_text(md.read_text(encoding="utf-8"), encoding="utf-8")
    nb = nbformat.read(str(ipynb), as_version=4)
    for n, cell in enumerate(nb.cells):
        cell["id"] = f"saved-{n}"
        if cell.cell_type == "code":
            cell.outputs = [nbformat.v4.new_output("stream", text="hi")]
    nbformat.write(nb, str(tmp_path / ipynb.name))
    assert notebook_pairs.differences(tmp_path / md.name, tmp_path / ipynb.name) is None
    nb.cells[1].source += "\n# changed"
    nbformat.write(nb, str(tmp_path / ipynb.name))
    assert "cell 1 differs" in notebook_pairs.differences(tmp_path / md.name, tmp_path / ipynb.name)


def test_a_rebuild_keeps_the_ids_of_unchanged_cells(tmp_path):
    md, ipynb = notebook_pairs.pairs()[0]
    copy_md = tmp_path / md.name
    text = md.read_text(encoding="utf-8")
    copy_md.write_text(text.replace("```python\n", "```python\n# new first line\n", 1),
                       encoding="utf-8")
    old = nbformat.read(str(ipynb), as_version=4)
    new = notebook_pairs.build(copy_md, old)
    changed = [n for n, (a, b) in enumerate(zip(old.cells, new.cells)) if a.id != b.id]
    assert len(changed) == 1 and len(new.cells) == len(old.cells), changed
    assert len({c.id for c in new.cells}) == len(new.cells)


def test_from_ipynb_keeps_an_edit_made_in_the_notebook(tmp_path):
    md, ipynb = notebook_pairs.pairs()[0]
    nb = nbformat.read(str(ipynb), as_version=4)
    nb.cells[0].source += "\n\nAn instructor's note."
    target = tmp_path / ipynb.name
    nbformat.write(nb, str(target))
    written = notebook_pairs.write_markdown_from_notebook(target)
    assert "An instructor's note." in written.read_text(encoding="utf-8")
    assert notebook_pairs.differences(written, target) is None
