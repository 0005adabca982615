"""The course home and lab.progress(): read from the notebooks, so neither can drift."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lab_support import course
from lab_support.progress import keep_check_results, progress, progress_rows

ROOT = Path(__file__).resolve().parents[1]
NEW_NOTEBOOK = """# 99 · Fan-out

**Time:** about 20 min

**Learning goals**

1. Send one event per customer.
2. See each run retried on its own.

```python
lab.predict("c5-runs", "How many runs?", choices="numeric", answer=3, explain="One each.")
```
"""


def test_the_committed_course_home_lists_every_notebook():
    entries = course.course()
    stems = [e.stem for e in entries]
    assert stems == sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]*.md"))
    home = (ROOT / "notebooks" / "README.md").read_text(encoding="utf-8")
    assert home == course.home_markdown(entries), "notebooks/README.md is stale: make notebooks"
    for entry in entries:
        assert f"]({entry.stem}.ipynb)" in home and entry.time in home
        assert entry.goals and all(goal in home for goal in entry.goals)
        assert entry.predictions, f"{entry.stem} has no predictions"
    quick = entries[0]
    assert quick.exercise == "exercises/00_quick_win_exercise.ipynb" and quick.checks


def test_a_new_notebook_is_one_file_and_appears_in_the_home(tmp_path):
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks",
                    ignore=shutil.ignore_patterns("*.ipynb"))
    shutil.copytree(ROOT / "exercises", tmp_path / "exercises")
    # a stem no real notebook will take, so the course's own notebooks never collide with it
    (tmp_path / "notebooks" / "99_fan_out.md").write_text(NEW_NOTEBOOK, encoding="utf-8")
    entries = course.course(tmp_path)
    added = entries[-1]
    assert added.stem == "99_fan_out" and added.exercise is None
    assert added.goals == ["Send one event per customer.", "See each run retried on its own."]
    home = course.home_markdown(entries)
    assert "| 99 | [Fan-out](99_fan_out.ipynb) | about 20 min | none |" in home
    committed = (ROOT / "notebooks" / "README.md").read_text(encoding="utf-8")
    assert home != committed, "a notebook missing from the home makes the check fail"


def test_a_notebook_without_its_time_line_is_named(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "07_x.md").write_text(NEW_NOTEBOOK.replace("**Time:** about 20 min\n", ""))
    with pytest.raises(course.CourseError, match=r"07_x.md.*'\*\*Time:\*\* \.\.\.' line"):
        course.course(tmp_path)


def test_check_mode_passes_on_the_repository(capsys):
    assert course.main(["--check"]) == 0
    assert "up to date" in capsys.readouterr().out


def entry(stem, predictions, checks, exercise=True):
    return course.Entry(stem, f"{stem[:2]} · {stem}", "10 min", ["g"], predictions,
                        f"exercises/{stem}_exercise.ipynb" if exercise else None, checks)


def test_progress_counts_first_answers_and_latest_check_results():
    entries = [entry("00_a", ["p1", "p2"], {"runs": 2, "memo": 1}),
               entry("01_b", ["p3"], {}, exercise=False)]
    predictions = [{"id": "p1", "correct": True}, {"id": "p1", "correct": False},
                   {"id": "p3", "correct": None}, {"id": "elsewhere", "correct": True}]
    checks = [{"name": "runs", "passed": False, "points": 0},
              {"name": "runs", "passed": True, "points": 2},   # fixed and re-run: counts
              {"name": "memo", "passed": True, "points": 1},
              {"name": "memo", "passed": False, "points": 0}]  # broken again: does not
    first, second = progress_rows(entries, predictions, checks)
    assert (first["predictions"], first["right"], first["checks passed"], first["points"]) == \
        ("1/2", "1/1", "1/2", "2/3")
    assert not first["_done"]
    assert (second["predictions"], second["checks passed"], second["_done"]) == \
        ("1/1", "no exercise", True)


def test_progress_reads_the_state_folder(tmp_path, capsys):
    state = tmp_path / "state"
    state.mkdir()
    quick = course.course()[0]
    (state / "predictions.jsonl").write_text(
        json.dumps({"id": quick.predictions[0], "correct": True}) + "\n")
    (state / "checks.jsonl").write_text(
        "".join(json.dumps({"name": n, "passed": True, "points": p}) + "\n"
                for n, p in quick.checks.items()) + '{"name": "cut short')
    report = progress(state)
    assert report.rows[0]["predictions"] == f"1/{len(quick.predictions)}"
    assert report.rows[0]["checks passed"] == f"{len(quick.checks)}/{len(quick.checks)}"
    report.show()
    assert "progress: 0 of" in capsys.readouterr().out
    assert list(report.frame.columns) == ["notebook", "predictions", "right", "checks passed",
                                          "points"]


def test_a_kernels_check_results_are_kept_for_progress(tmp_path):
    from lab_support import checks

    path = keep_check_results(tmp_path)
    keep_check_results(tmp_path)  # a second Lab in the kernel: still one line per result
    try:
        with checks.check("kept for progress", points=2):
            pass
        with checks.check("kept for progress", points=2):
            raise AssertionError("broken again")
    finally:
        checks._listeners.clear()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["name"], r["passed"], r["points"]) for r in lines] == [
        ("kept for progress", True, 2), ("kept for progress", False, 0)]
