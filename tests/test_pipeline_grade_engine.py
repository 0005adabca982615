"""grade with the embedded engine: one fresh engine per notebook, reached via LAB_ENGINE_URL.

Also the issue's "done when": ``grade --self-check`` gives full marks for solutions/, and
the untouched exercises score 0 without crashing the grader.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lab_support import grade
from lab_support.report import read_csv

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "pipeline_fixtures"
pytestmark = [pytest.mark.notebook, pytest.mark.slow]


def needs(folder: Path) -> list[Path]:
    notebooks = sorted(folder.glob("*.ipynb"))
    if not notebooks:
        pytest.skip(f"no notebooks in {folder} yet")
    return notebooks


def test_each_notebook_gets_its_own_engine(tmp_path):
    notebook = FIXTURES / "engine" / "engine_ping.ipynb"
    # The same notebook twice: the second must see an empty engine, not the first one's.
    (tmp_path / "again").mkdir()
    copy = tmp_path / "again" / "engine_ping.ipynb"
    copy.write_bytes(notebook.read_bytes())
    code = grade.main([str(notebook), str(tmp_path / "again"), "--out", str(tmp_path / "out"),
                       "--timeout", "120"])
    assert code == 0
    rows = read_csv(tmp_path / "out" / "grades.csv")
    assert {(r.submission, r.check): r.status for r in rows} == {
        (sub, check): status
        for sub in ("engine_ping", "again")
        for check, status in [(grade.EXECUTION_ROW, "completed"),
                              ("grader injected parameters", "passed"),
                              ("engine answers", "passed"),
                              ("fresh engine per notebook", "passed")]}


def test_self_check_gives_full_marks_on_the_course_solutions(tmp_path, capsys):
    needs(ROOT / "solutions")
    code = grade.main(["--self-check", "--out", str(tmp_path), "--timeout", "240"])
    out = capsys.readouterr()
    assert code == 0, out.out + out.err


def test_untouched_exercises_score_zero_without_crashing_the_grader(tmp_path):
    needs(ROOT / "exercises")
    code = grade.main([str(ROOT / "exercises"), "--out", str(tmp_path), "--timeout", "240"])
    assert code == 0
    rows = read_csv(tmp_path / "grades.csv")
    assert sum(r.points for r in rows) == 0
    assert sum(r.max for r in rows) > 0
    executions = [r for r in rows if r.check == grade.EXECUTION_ROW]
    assert len(executions) == len(needs(ROOT / "exercises"))
    # Stopping at a placeholder is fine; hanging or a dead kernel is not.
    assert all(r.status in ("completed", "error") for r in executions), executions
    assert all("NotImplementedError" in r.hint for r in executions if r.status == "error")
