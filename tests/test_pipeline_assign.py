"""assign: solutions/ -> exercises/ (markers, hidden checks, stripping, byte-stable --check)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from lab_support import assign
from lab_support.assign import MarkerError, replace_solutions

ROOT = Path(__file__).resolve().parents[1]


def solution_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                   "language_info": {"name": "python", "version": "3.11.9"},
                   "widgets": {"application/vnd.jupyter.widget-state+json": {"state": {}}}}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Exercise"),
        nbformat.v4.new_code_cell(
            "def double(x):\n    # BEGIN SOLUTION\n    y = x * 2\n    return y\n    # END SOLUTION\n",
            execution_count=3, outputs=[nbformat.v4.new_output("stream", text="hi\n")],
            metadata={"tags": ["parameters"], "execution": {"iopub.status.busy": "x"}}),
        nbformat.v4.new_code_cell("# HIDDEN CHECK\nassert double(4) == 8"),
        nbformat.v4.new_code_cell("assert double(2) == 4", metadata={"tags": ["hidden-check"]}),
        nbformat.v4.new_code_cell("with lab.check('doubles'):\n    assert double(1) == 2"),
    ]
    return nb


def test_solution_block_becomes_placeholder_at_its_indent():
    src = "a = 1\nif a:\n    # BEGIN SOLUTION\n    b = 2\n    # END SOLUTION\nprint(a)"
    assert replace_solutions(src) == ("a = 1\nif a:\n    # YOUR CODE HERE\n"
                                      "    raise NotImplementedError\nprint(a)")


@pytest.mark.parametrize("src, words", [
    ("# BEGIN SOLUTION\nx = 1", "never closed"),
    ("x = 1\n# END SOLUTION", "without"),
    ("# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION", "inside another"),
])
def test_unbalanced_markers_are_clear_errors(src, words):
    with pytest.raises(MarkerError, match=words):
        replace_solutions(src, "demo.ipynb, cell 2")


def test_make_exercise_strips_hides_and_cleans():
    ex = assign.make_exercise(solution_notebook(), "demo.ipynb")
    sources = [c.source for c in ex.cells]
    assert len(ex.cells) == 3  # both hidden checks gone
    assert "y = x * 2" not in sources[1] and "raise NotImplementedError" in sources[1]
    assert all(c.get("outputs", []) == [] for c in ex.cells)
    assert ex.cells[1].execution_count is None
    assert ex.cells[1].metadata == {"tags": ["parameters"]}
    assert set(ex.metadata) == {"kernelspec", "language_info", "lab"}
    assert ex.metadata.language_info == {"name": "python"}
    nbformat.validate(ex)


def test_output_is_byte_stable_and_check_detects_drift(tmp_path, capsys):
    src, dest = tmp_path / "solutions", tmp_path / "exercises"
    src.mkdir()
    nbformat.write(solution_notebook(), str(src / "demo.ipynb"))
    args = ["--source", str(src), "--dest", str(dest)]
    assert assign.main(args + ["--check"]) == 1
    assert "missing" in capsys.readouterr().out
    assert assign.main(args) == 0
    first = (dest / "demo.ipynb").read_bytes()
    assert assign.main(args) == 0 and (dest / "demo.ipynb").read_bytes() == first
    assert assign.main(args + ["--check"]) == 0
    # Edit the exercise by hand: drift. Add an orphan: drift too.
    (dest / "demo.ipynb").write_text(first.decode().replace("YOUR CODE HERE", "edited"))
    (dest / "orphan.ipynb").write_bytes(first)
    assert assign.main(args + ["--check"]) == 1
    out = capsys.readouterr().out
    assert "demo.ipynb: out of date" in out and "orphan.ipynb: has no source" in out


def test_strip_removes_outputs_in_place(tmp_path):
    path = tmp_path / "nb.ipynb"
    nbformat.write(solution_notebook(), str(path))
    assert assign.main(["--strip", "--check", str(tmp_path)]) == 1
    assert assign.main(["--strip", str(tmp_path)]) == 0
    assert assign.main(["--strip", "--check", str(tmp_path)]) == 0
    nb = nbformat.read(str(path), as_version=4)
    assert len(nb.cells) == 5  # stripping keeps hidden checks and solutions
    assert "y = x * 2" in nb.cells[1].source


def test_exercises_in_repo_are_up_to_date():
    if not list((ROOT / "solutions").glob("*.ipynb")):
        pytest.skip("no solution notebooks yet")
    problems = assign.drifted(ROOT / "solutions", ROOT / "exercises")
    assert not problems, "run python -m lab_support.assign:\n" + "\n".join(problems)


def test_committed_notebooks_have_no_outputs():
    dirs = [d for d in (ROOT / "notebooks", ROOT / "solutions", ROOT / "exercises") if d.is_dir()]
    with_outputs = assign.strip(dirs, check_only=True) if dirs else []
    assert not with_outputs, ("strip them with python -m lab_support.assign --strip:\n"
                              + "\n".join(map(str, with_outputs)))
