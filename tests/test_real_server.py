"""The real-server lane (``make test-real`` / ``pytest -m real``): the workbook on a real
``inngest dev``, through the same paths a learner takes.

* every notebook in ``notebooks/`` and every solution in ``solutions/`` runs to the end with
  papermill (concept notebooks find the server through ``INNGEST_DEV``, solutions through the
  grader's ``engine_url`` parameter); concept notebooks print the same claims as on the
  embedded engine, and no check of a solution fails: each one passes, or is recorded as
  skipped because it cannot be observed on a real server;
* the lab's real-server equivalents work there: GraphQL that lags REST, duplicate event ids,
  host-side chaos with Retry-After, cron ticks fired by ``lab.clock``.

Without a server (``INNGEST_DEV`` unset and no ``inngest`` on PATH) every test skips with the
reason. Each notebook gets its own server when the lane starts the binary itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import inngest
import nbformat
import pytest
from real_server import real_dev_server
from test_notebooks_execute import CLAIMS, check_records, errors, printed

from lab_support.lab_object import Lab

ROOT = Path(__file__).resolve().parents[1]
CELL_TIMEOUT_S = 300
PROCESS_TIMEOUT_S = 900
REPORT_ENV = "LAB_REAL_REPORT"  # a file: one JSON line per notebook (the lane's table)

pytestmark = [pytest.mark.real, pytest.mark.timeout(PROCESS_TIMEOUT_S + 120)]


@pytest.fixture
def real_url():
    with real_dev_server() as url:
        yield url


def run_on_real(source: Path, out_dir: Path, url: str, *, as_grader: bool):
    executed = out_dir / source.name
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONUNBUFFERED="1")
    env.pop("LAB_ENGINE_URL", None)
    cmd = [sys.executable, "-m", "papermill", str(source), str(executed), "-k", "python3",
           "--cwd", str(ROOT), "--no-progress-bar", "--execution-timeout", str(CELL_TIMEOUT_S)]
    if as_grader:
        cmd += ["-p", "grading", "True", "-r", "engine_url", url]
        env.pop("INNGEST_DEV", None)
    else:
        env["INNGEST_DEV"] = url
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                              timeout=PROCESS_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{source.name} did not finish within {PROCESS_TIMEOUT_S} s on the real "
                    f"server (papermill: {str(exc.stderr)[-2000:]})")
    nb = nbformat.read(str(executed), as_version=4) if executed.exists() else None
    return proc.returncode, nb, proc.stderr[-4000:]


def report(row: dict) -> None:
    print(json.dumps(row))
    if os.environ.get(REPORT_ENV):
        with open(os.environ[REPORT_ENV], "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")


def real_notices(nb) -> int:
    return sum("[real dev server]" in out.get("text", "") + str(out.get("data", {}))
               for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", []))


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.name)
def test_concept_notebook_runs_on_a_real_server(path, tmp_path, real_url):
    code, nb, log = run_on_real(path, tmp_path, real_url, as_grader=False)
    report({"notebook": f"notebooks/{path.name}", "ok": code == 0,
            "errors": errors(nb) if nb else [], "real_notices": real_notices(nb) if nb else 0})
    assert code == 0 and nb is not None, f"{path.name} failed: {errors(nb) if nb else ''}\n{log}"
    # The same claims as on the embedded engine: the notebook teaches the same facts here.
    missing = [claim for claim in CLAIMS.get(path.name, []) if claim not in printed(nb)]
    assert not missing, f"{path.name} does not show {missing} on a real server"


@pytest.mark.parametrize("path", sorted((ROOT / "solutions").glob("*.ipynb")), ids=lambda p: p.name)
def test_solution_grades_on_a_real_server(path, tmp_path, real_url):
    code, nb, log = run_on_real(path, tmp_path, real_url, as_grader=True)
    records = check_records(nb) if nb else []
    skipped = [r["name"] for r in records if r.get("skipped")]
    failed = [(r["name"], r.get("message")) for r in records
              if not r["passed"] and not r.get("skipped")]
    report({"notebook": f"solutions/{path.name}", "ok": code == 0,
            "passed": sum(bool(r["passed"]) for r in records), "skipped": len(skipped),
            "failed": len(failed), "points": sum(r["points"] for r in records),
            "max": sum(r["max"] for r in records), "errors": errors(nb) if nb else []})
    assert code == 0 and nb is not None, f"{path.name} failed: {errors(nb) if nb else ''}\n{log}"
    assert records, "the solution recorded no checks"
    assert not failed, failed


# -- the lab's real-server equivalents, one by one -----------------------------------------
client = inngest.Inngest(app_id="real-lane", is_production=False)
CALLS: dict[str, int] = {}


def _count(step: str) -> str:
    CALLS[step] = CALLS.get(step, 0) + 1
    return step


@client.create_function(fn_id="steps", trigger=inngest.TriggerEvent(event="lane/steps"),
                        retries=2)
async def steps(ctx: inngest.Context) -> list[str]:
    first = await ctx.step.run("first", _count, "first")
    second = await ctx.step.run("second", _count, "second")
    return [first, second]


@client.create_function(fn_id="tick", trigger=inngest.TriggerCron(cron="0 9 * * *"))
async def tick(ctx: inngest.Context) -> str:
    return await ctx.step.run("day", lambda: ctx.event.data["scheduledAt"][:10])


@pytest.fixture
def real_lab(real_url):
    lab = Lab()
    lab.start([steps, tick], engine=real_url, quiet=True)
    CALLS.clear()
    try:
        yield lab
    finally:
        lab.stop()


def _attempts(lab, run_id: str) -> dict[str, int]:
    return {row["step"]: row["attempts"]
            for row in lab.trace(run_id, outputs=False).to_dict("records")}


def test_a_run_is_read_right_after_it_is_listed(real_lab):
    lab = real_lab
    for n in range(5):  # GraphQL lags REST by tens of ms: each wait polls instead of failing
        run = lab.wait(lab.send("lane/steps", {"n": n}), status="Completed", timeout=60)
        assert lab.run(run["id"])["status"] == "COMPLETED"
        assert set(_attempts(lab, run["id"])) >= {"first", "second"}


def test_duplicate_ids_resolve_to_the_one_run_on_a_real_server(real_lab, capsys):
    lab = real_lab
    copies = [lab.send("lane/steps", {"n": 1}, id="lane-dup")[0] for _ in range(2)]
    runs = [lab.wait(copy, status="Completed", timeout=60) for copy in copies]
    assert runs[0]["id"] == runs[1]["id"]
    assert sum(len(lab.runs(event_id=c)) for c in copies) == 1
    assert "is a duplicate of id 'lane-dup'" in capsys.readouterr().out
    assert CALLS == {"first": 1, "second": 1}


@pytest.mark.parametrize("mode, executions", [("raise", 1), ("http_503", 1), ("timeout", 1),
                                              ("lose_response", 2)])
def test_host_side_chaos_on_a_real_server(real_lab, mode, executions):
    lab = real_lab
    lab.chaos.fail_step("steps", "second", times=1, mode=mode)
    run = lab.wait(lab.send("lane/steps", {"mode": mode}), status="Completed", timeout=90)
    assert CALLS == {"first": 1, "second": executions}
    assert json.loads(lab.run(run["id"])["output"]) == ["first", "second"]
    assert [(r["used"], r["remaining"]) for r in lab.chaos.rules()] == [(1, 0)]
    if mode == "raise":  # an SDK-shaped step error is an attempt of the step in the trace;
        assert _attempts(lab, run["id"])["second"] == 2  # a failed call is "executor.nonstep"


def test_retry_after_keeps_retries_short_and_the_last_attempt_fails(real_lab):
    lab = real_lab
    lab.chaos.fail_step("steps", "first", times=3, mode="raise")  # retries=2: 3 attempts
    run = lab.wait(lab.send("lane/steps", {"doomed": True}), status="Failed", timeout=90)
    assert "lab chaos (raise" in lab.run(run["id"])["output"]
    assert CALLS.get("first", 0) == 0


def test_cron_ticks_are_fired_by_the_lab_clock(real_lab):
    lab = real_lab
    start = lab.clock.now()
    fired = lab.clock.advance(timedelta(days=3))["fired"]
    assert len(fired) == 3 and all(f["function"] == "real-lane-tick" for f in fired)
    runs = lab.wait(lab.runs(function="tick").ids, status="Completed", timeout=90)
    days = sorted(json.loads(r["output"]) for r in runs)
    assert days == sorted(f["scheduledAt"][:10] for f in fired)
    assert all(start < datetime.fromisoformat(f["scheduledAt"]) <= start + timedelta(days=3)
               for f in fired)


def test_invoke_after_the_lab_clock_moved_finds_its_run(real_lab):
    # lab.clock.advance moves only the lab's cursor on a real server; the invoked run is
    # queued at wall time, and lab.invoke must still find it
    lab = real_lab
    lab.clock.advance(timedelta(days=2))
    run = lab.wait(lab.invoke("steps", {"by": "hand"}), status="Completed", timeout=60)
    assert json.loads(lab.run(run["id"])["output"]) == ["first", "second"]


def test_step_peaks_from_real_traces_are_not_inflated(real_lab):
    # the real server leaves attempt spans open in finished runs; runs one after another
    # executed one step at a time, so the rebuilt peak is 1, not the number of runs
    lab = real_lab
    for n in range(4):
        lab.wait(lab.send("lane/steps", {"one-by-one": n}), status="Completed", timeout=60)
    assert lab.stats("steps").peak == 1


def test_lab_hours_scale_in_a_process_host_too(real_url):
    from real_lane_functions import half_hour_nap

    lab = Lab()
    try:
        lab.start([half_hour_nap], engine=real_url, host="process", quiet=True)
        assert "--seconds-per-hour" in lab._host.command()
        # 30 real minutes unscaled; lab.minutes(30) is 5 s on a real server.
        run = lab.wait(lab.send("lane/nap", {}), status="Completed", timeout=60)
        assert json.loads(run["output"]) == "woke up"
    finally:
        lab.stop()
