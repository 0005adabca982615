"""One engine per .lab folder: a later lab.start reuses the engine already serving it."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import lab_helpers as h
import pytest

from lab_support.engine_process import EngineProcess
from lab_support.engines import running_engine, write_engine_record
from lab_support.lab_object import Lab

pytestmark = pytest.mark.timeout(180)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(30)
    return proc.pid


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    monkeypatch.delenv("INNGEST_DEV", raising=False)
    monkeypatch.delenv("LAB_STATE_DIR", raising=False)  # these tests are about the default
    return tmp_path


def test_state_lives_in_the_project_root_and_is_reused(project):
    first = Lab()
    try:
        first.start([h.order], engine="embedded", quiet=True)
        assert first.state_dir == project / ".lab"
        assert (project / ".lab" / "engine").exists()
        record = running_engine(project / ".lab")
        assert record and record["url"] == first.api.url
        second = Lab()  # e.g. a second notebook of the same project
        second.start([h.order], engine="embedded", quiet=True)
        assert second.api.url == first.api.url
        assert "reusing" in second.engine_choice.reason
        second.stop()  # its owner is alive: the engine keeps running
        assert httpx.get(first.api.url + "/health", timeout=5).status_code == 200
    finally:
        first.stop()
    assert running_engine(project / ".lab") is None


def test_an_orphaned_engine_is_adopted_and_stopped(project):
    state = project / ".lab"
    state.mkdir()
    engine = EngineProcess(state_dir=str(state / "engine")).start()
    try:
        write_engine_record(state, engine.url, engine.proc.pid)
        record = json.loads((state / "engine.json").read_text())
        record["owner_pid"] = dead_pid()  # as if the kernel that started it had crashed
        (state / "engine.json").write_text(json.dumps(record))
        lab = Lab()
        lab.start([h.order], engine="embedded", quiet=True)
        assert lab.api.url == engine.url
        lab.stop()
        engine.proc.wait(15)
        assert not engine.alive()
    finally:
        engine.stop()
