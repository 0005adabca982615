"""grade with the embedded engine: one fresh engine per notebook, reached via LAB_ENGINE_URL.

Also the issue's "done when": ``grade --self-check`` gives full marks for solutions/, and
the untouched exercises score 0 without crashing the grader.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import nbformat
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
                       "--timeout", "120", "--source", "none"])
    assert code == 0
    rows = read_csv(tmp_path / "out" / "grades.csv")
    assert {(r.submission, r.check): r.status for r in rows} == {
        (sub, check): status
        for sub in ("engine_ping", "again")
        for check, status in [(grade.EXECUTION_ROW, "completed"),
                              ("grader injected parameters", "passed"),
                              ("engine answers", "passed"),
                              ("fresh engine per notebook", "passed")]}


class FakeRealServer(ThreadingHTTPServer):
    """Answers GET /dev like a dev server that is not the lab's embedded engine."""

    def __init__(self):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = json.dumps({"version": "1.0.0-fake"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def real_server():
    server = FakeRealServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(10)


def test_engine_url_grades_against_a_running_engine(tmp_path, engine):
    notebook = FIXTURES / "engine" / "skip_on_real.ipynb"
    code = grade.main([str(notebook), "--source", "none", "--out", str(tmp_path),
                       "--timeout", "120", "--engine-url", engine.url])
    assert code == 0
    rows = {r.check: r for r in read_csv(tmp_path / "grades.csv")}
    assert rows[grade.EXECUTION_ROW].status == "completed", rows[grade.EXECUTION_ROW]
    assert rows["the virtual clock jumps"].status == "passed"
    assert rows["the grader's engine URL reaches the kernel"].status == "passed"


def test_a_lab_only_check_is_skipped_on_a_real_server(tmp_path, real_server):
    notebook = FIXTURES / "engine" / "skip_on_real.ipynb"
    code = grade.main([str(notebook), "--source", "none", "--out", str(tmp_path),
                       "--timeout", "120", "--engine-url", real_server.url])
    assert code == 0
    rows = {r.check: r for r in read_csv(tmp_path / "grades.csv")}
    skipped = rows["the virtual clock jumps"]
    assert (skipped.status, skipped.points, skipped.max) == ("skipped", 0, 0)
    assert "embedded engine" in skipped.hint
    assert rows["the grader's engine URL reaches the kernel"].status == "passed"
    assert "Skipped checks" in (tmp_path / "report.html").read_text()


def test_skipped_is_failed_on_the_embedded_engine(tmp_path):
    # A NotOnRealServer on the embedded engine is a bug or a forgery, never a skip.
    nb = nbformat.read(str(FIXTURES / "engine" / "skip_on_real.ipynb"), as_version=4)
    nb.cells[-1].source = nb.cells[-1].source.replace('if kind != "embedded"', "if True")
    (tmp_path / "sub").mkdir()
    nbformat.write(nb, str(tmp_path / "sub" / "skip_on_real.ipynb"))
    code = grade.main([str(tmp_path / "sub"), "--source", "none", "--out", str(tmp_path / "o"),
                       "--timeout", "120"])
    assert code == 0
    rows = {r.check: r for r in read_csv(tmp_path / "o" / "grades.csv")}
    assert (rows["the virtual clock jumps"].status, rows["the virtual clock jumps"].max) == \
        ("failed", 2)


@pytest.mark.timeout(900)  # every course notebook, one after another
def test_self_check_gives_full_marks_on_the_course_solutions(tmp_path, capsys):
    needs(ROOT / "solutions")
    code = grade.main(["--self-check", "--out", str(tmp_path), "--timeout", "240"])
    out = capsys.readouterr()
    assert code == 0, out.out + out.err


@pytest.mark.timeout(900)  # every course notebook, one after another
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
