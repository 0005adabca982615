"""grade: every submission runs in its own sandboxed job and is scored on what ran.

The fixtures (tests/pipeline_fixtures, made by make_fixtures.py) do not need the engine,
so these runs use ``--engine none``; test_pipeline_grade_engine.py covers the engine.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import psutil
import pytest

from lab_support import grade
from lab_support.checks import CHECK_MIMETYPE
from lab_support.grade_notebook import MARK_MIMETYPE, restore_checks
from lab_support.report import read_csv

FIXTURES = Path(__file__).resolve().parent / "pipeline_fixtures"
SUBMISSIONS = FIXTURES / "submissions"
pytestmark = [pytest.mark.notebook, pytest.mark.slow]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    out = tmp_path_factory.mktemp("grades")
    code = grade.main([str(SUBMISSIONS / who) for who in ("alice", "bob", "carol", "dave")]
                      + [str(FIXTURES / "exercises" / "fizz.ipynb"),
                         "--source", str(FIXTURES / "solutions"), "--out", str(out),
                         "--timeout", "8", "--engine", "none"])
    assert code == 0  # bad submissions are graded, not errors of the grader
    rows = read_csv(out / "grades.csv")
    by_key = {(r.submission, r.check): r for r in rows}
    return out, rows, by_key


def scores(rows):
    totals: dict[str, list[float]] = {}
    for r in rows:
        totals.setdefault(r.submission, [0, 0])
        totals[r.submission][0] += r.points
        totals[r.submission][1] += r.max
    return {k: tuple(v) for k, v in totals.items()}


def test_each_submission_is_scored_on_what_ran(graded):
    _, rows, by_key = graded
    assert scores(rows) == {"alice": (4, 4), "bob": (2, 4), "carol": (3, 4), "dave": (3, 4),
                            "fizz": (0, 4)}
    status = {s: by_key[(s, grade.EXECUTION_ROW)].status for s in scores(rows)}
    assert status == {"alice": "completed", "bob": "error", "carol": "timeout",
                      "dave": "kernel died", "fizz": "completed"}


def test_csv_explains_failures_and_unreached_checks(graded):
    _, _, by_key = graded
    assert "NameError" in by_key[("bob", grade.EXECUTION_ROW)].hint
    bob_fizz = by_key[("bob", "fizz of 3")]
    assert bob_fizz.status == "failed" and "Multiples of 3 say Fizz." in bob_fizz.hint
    # Bob's total cell raises after defining total: the notebook goes on (as nbgrader does),
    # so his total check still counts; the error is the notebook's status.
    assert by_key[("bob", "total adds")].status == "passed"
    assert "later cells ran" in by_key[("bob", grade.EXECUTION_ROW)].hint
    assert by_key[("fizz", "total adds")].hint.startswith("NotImplementedError")


def test_hidden_check_is_restored_from_source(graded):
    out, _, by_key = graded
    # The learner notebooks do not contain the hidden check; the grader put it back.
    assert "HIDDEN CHECK" not in (SUBMISSIONS / "alice" / "fizz.ipynb").read_text()
    assert by_key[("alice", "fizz of 4 (hidden)")].status == "passed"
    assert by_key[("fizz", "fizz of 4 (hidden)")].status == "failed"
    executed = nbformat.read(str(out / "executed" / "alice" / "fizz.ipynb"), as_version=4)
    assert executed.metadata["lab"]["grading"]["status"] == "completed"


def test_report_has_pass_rates_and_histogram(graded):
    out, _, _ = graded
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html
    assert "fizz of 3" in html and "3/5" in html  # alice, carol, dave passed it
    assert "kernel died" in html and "timeout" in html


def test_self_check_gives_full_marks_for_solutions(tmp_path):
    code = grade.main(["--self-check", "--source", str(FIXTURES / "solutions"),
                       "--out", str(tmp_path), "--engine", "none", "--timeout", "60"])
    assert code == 0
    assert scores(read_csv(tmp_path / "grades.csv")) == {"solutions": (4, 4)}


def test_self_check_fails_without_full_marks(tmp_path, capsys):
    code = grade.main(["--self-check", "--source", str(FIXTURES / "exercises"),
                       "--out", str(tmp_path), "--engine", "none", "--timeout", "60"])
    assert code == 1
    assert "self-check: FAILED" in capsys.readouterr().out


def test_declared_checks_reads_literal_names_and_points():
    nb = nbformat.read(str(FIXTURES / "solutions" / "fizz.ipynb"), as_version=4)
    assert grade.declared_checks(nb) == {"fizz of 3": 2.0, "fizz of 4 (hidden)": 1.0,
                                         "total adds": 1.0}


def test_kill_tree_stops_grandchildren_in_other_sessions():
    # Like papermill's kernel: a grandchild in its own session survives killing the group.
    spawn = ("import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', "
             "'import time; time.sleep(120)'], start_new_session=True); time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", spawn], start_new_session=True)
    try:
        parent = psutil.Process(proc.pid)
        children = []
        for _ in range(100):  # up to ~10 s for the grandchild to appear
            children = parent.children(recursive=True)
            if children:
                break
            time.sleep(0.1)
        assert children, "the test's grandchild process never started"
        grade.kill_tree(proc)
        gone, alive = psutil.wait_procs(children, timeout=10)
        assert not alive
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_bad_arguments_are_clear(tmp_path):
    with pytest.raises(SystemExit, match="not a notebook"):
        grade.main([str(tmp_path / "missing.ipynb"), "--out", str(tmp_path)])
    with pytest.raises(SystemExit):
        grade.main(["--out", str(tmp_path)])  # nothing to grade


def test_checks_show_in_the_executed_notebook_without_grader_tokens(graded):
    out, _, _ = graded
    executed = nbformat.read(str(out / "executed" / "alice" / "fizz.ipynb"), as_version=4)
    outputs = [o for c in executed.cells for o in c.get("outputs", [])
               if CHECK_MIMETYPE in o.get("data", {})]
    assert [(o["data"][CHECK_MIMETYPE]["name"], o["data"][CHECK_MIMETYPE]["passed"])
            for o in outputs] == [("fizz of 3", True), ("fizz of 4 (hidden)", True),
                                  ("total adds", True)]
    assert all({"text/html", "text/plain"} <= set(o["data"]) for o in outputs)
    assert MARK_MIMETYPE not in json.dumps(executed)


def test_unreadable_notebook_is_listed_not_fatal(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "fizz.ipynb").write_text("{not json")
    code = grade.main([str(tmp_path / "sub"), "--source", str(FIXTURES / "solutions"),
                       "--out", str(tmp_path / "out"), "--engine", "none"])
    assert code == 0
    rows = read_csv(tmp_path / "out" / "grades.csv")
    assert rows[0].status == "unreadable"
    assert {r.check for r in rows[1:]} == {"fizz of 3", "fizz of 4 (hidden)", "total adds"}
    assert all(r.points == 0 and r.status == "not reached" for r in rows[1:])


def test_hidden_checks_go_after_their_anchor_or_at_the_end():
    source = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("a = 1", id="a"),
        nbformat.v4.new_code_cell("# HIDDEN CHECK\nassert a", id="h1"),
        nbformat.v4.new_code_cell("b = 2", id="b"),
        nbformat.v4.new_code_cell("# HIDDEN CHECK\nassert b", id="h2")])
    learner = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("a = 1", id="a"), nbformat.v4.new_code_cell("x = 0", id="x")])
    restored, _ = restore_checks(learner, source)
    assert [c.id for c in restored.cells] == ["a", "h1", "x", "h2"]  # "b" was deleted
    again, notes = restore_checks(restored, source)
    assert [c.id for c in again.cells] == ["a", "h1", "x", "h2"]  # present: not added twice
    assert notes == []  # the source's own cells, untouched: nothing to report


def test_parallel_jobs_score_like_one_at_a_time(graded, tmp_path):
    # a job that ends must clean up only its own strays, never a neighbour's grading process
    _, rows, _ = graded
    code = grade.main([str(SUBMISSIONS / who) for who in ("alice", "bob", "carol", "dave")]
                      + [str(FIXTURES / "exercises" / "fizz.ipynb"),
                         "--source", str(FIXTURES / "solutions"), "--out", str(tmp_path),
                         "--timeout", "8", "--engine", "none", "--jobs", "3"])
    assert code == 0
    parallel = read_csv(tmp_path / "grades.csv")
    assert not [r for r in parallel if "left no result" in r.hint or "exited with code"
                in r.hint], [(r.submission, r.hint) for r in parallel]
    assert scores(parallel) == scores(rows)
