"""Issue #9, finding 10, the network half: notebooks graded at the same time (``--jobs 2``)
cannot reach each other's engines.

tests/pipeline_fixtures/net/ holds the source (a function run through the notebook's engine,
a host of its own that the kernel calls) and three submissions graded in one run: ada is
right; mallory_net (wrong task) and mallory_net2 (right task) read every listening port from
/proc/net/tcp, connect to each, and reset and flood any embedded engine that serves the
exercise's app. A decoy engine started by this test, serving that app, stands for another
submission's engine for the whole run, so the attack always has a target.

Each kernel must score exactly what it solved, find no engine but its own, and leave the
decoy untouched; ada keeps full marks (its hidden check fails if anyone used its engine).
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import nbformat
import pytest

from lab_support import grade, sandbox
from lab_support.engine_process import EngineProcess
from lab_support.report import read_csv
from test_pipeline_grade_hostile import totals  # (points, max, execution status) per submission

NET = Path(__file__).resolve().parent / "pipeline_fixtures" / "net"
EXPECTED = {  # (points, max, execution status)
    "ada": (4, 4, "completed"),
    "mallory_net": (2, 4, "completed"),    # wrong task; its own host and engine are its own
    "mallory_net2": (4, 4, "completed"),   # right task; the attack gains nothing
}

pytestmark = [pytest.mark.notebook, pytest.mark.slow,
              pytest.mark.skipif(sandbox.landlock_abi() < 6,
                                 reason="needs Landlock ABI >= 6 (files, signals, TCP ports)")]


@pytest.fixture(scope="module")
def decoy():
    """Another submission's engine: it serves the exercise's app and holds one event."""
    eng = EngineProcess(memory=True).start()
    fn = {"id": "netlab-greet", "name": "greet", "triggers": [{"event": "netlab/greet"}],
          "steps": {"step": {"id": "step", "name": "step", "runtime": {
              "type": "http", "url": "http://127.0.0.1:9/api/inngest?fnId=netlab-greet"}}}}
    try:
        r = httpx.post(eng.url + "/fn/register", timeout=10, json={
            "appname": "netlab", "url": "http://127.0.0.1:9/api/inngest", "functions": [fn]})
        assert r.status_code == 200, r.text
        r = httpx.post(eng.url + "/e/key", json={"name": "netlab/greet",
                                                 "data": {"name": "decoy"}}, timeout=10)
        assert r.status_code == 200, r.text
        yield eng
    finally:
        eng.stop()


@pytest.fixture(scope="module")
def graded(decoy, tmp_path_factory):
    out = tmp_path_factory.mktemp("network")
    code = grade.main([str(NET / "mallory_net"), str(NET / "ada"), str(NET / "mallory_net2"),
                       "--source", str(NET / "solutions"), "--out", str(out), "--timeout", "120",
                       "--jobs", "2", "--confine", "landlock"])
    assert code == 0
    return out, read_csv(out / "grades.csv")


def executed(out: Path, who: str) -> nbformat.NotebookNode:
    return nbformat.read(str(out / "executed" / who / "netlab.ipynb"), as_version=4)


def scan(out: Path, who: str) -> dict:
    for cell in executed(out, who).cells:
        for output in cell.get("outputs", []):
            for line in output.get("text", "").splitlines():
                if line.startswith("NET "):
                    return json.loads(line[4:])
    raise AssertionError(f"{who}: the scan printed nothing")


def test_each_submission_scores_exactly_what_it_solved(graded):
    _, rows = graded
    assert totals(rows) == EXPECTED, [r for r in rows if r.status != "passed"]


def test_no_kernel_reaches_another_engine(graded, decoy):
    out, _ = graded
    for who in ("mallory_net", "mallory_net2"):
        seen = scan(out, who)
        assert seen["reached"] == {}, (who, seen["reached"])
        assert decoy.port in seen["refused"], (who, decoy.port, seen["refused"][:20])
    events = httpx.get(decoy.url + "/v1/events", timeout=10).json()["data"]
    assert [e["data"] for e in events] == [{"name": "decoy"}], events


def test_the_executed_notebooks_say_the_network_was_confined(graded):
    out, _ = graded
    for who in EXPECTED:
        grading = executed(out, who).metadata["lab"]["grading"]
        assert grading["confined"] is True and grading["net_confined"] is True, grading
    assert "files and TCP ports" in (out / "report.html").read_text(encoding="utf-8")
