"""host='process': kill the worker in the middle of a step, restart it, and the run resumes
with the finished step memoized (course Concept 6, scenario B)."""

from __future__ import annotations

import time

import lab_helpers as h
import pytest

from lab_support.host import HostError
from lab_support.lab_object import Lab

pytestmark = pytest.mark.timeout(240)


def wait_for_file(path, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not appear within {timeout} s: the step never started")
        time.sleep(0.05)


def test_kill_mid_step_then_restart_resumes(engine, tmp_path):
    lab = Lab()
    try:
        lab.start([h.slow], engine=engine.url, host="process", quiet=True)
        assert lab.status()["host_kind"] == "process"
        marker = tmp_path / "in-work"
        ids = lab.send("lab/slow", {"marker": str(marker), "log_dir": str(tmp_path),
                                    "work_s": 120})
        wait_for_file(marker)
        lab.kill_host()
        assert not lab._host.alive()
        lab.restart_host()
        run = lab.wait(ids, timeout=90)
        assert run["status"] == "COMPLETED"
        assert h.executed(tmp_path, run["id"]) == ["prepare", "work", "work"]
        # The killed request never answered, so the engine records one finished "work"
        # attempt; "prepare" ran once and its stored output was reused after the crash.
        trace = lab.trace(run["id"]).set_index("step")
        assert list(trace["status"]) == ["COMPLETED", "COMPLETED"]
        assert "prepared" in trace.loc["prepare", "output"]
    finally:
        lab.stop()


def test_process_host_needs_an_importable_module(engine):
    import inngest

    client = inngest.Inngest(app_id="labtest", is_production=False)

    @client.create_function(fn_id="local", trigger=inngest.TriggerEvent(event="lab/local"))
    async def local(ctx):
        return 1

    local._handler.__module__ = "__main__"  # as if defined in a notebook cell
    lab = Lab()
    try:
        with pytest.raises(HostError, match="%%writefile"):
            lab.start([local], engine=engine.url, host="process", quiet=True)
    finally:
        lab.stop()
