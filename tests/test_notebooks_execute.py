"""Execute the pilot notebooks headless with papermill against a fresh embedded engine.

* every concept notebook in ``notebooks/`` and every solution in ``solutions/`` runs to the end
  without an error, and every ``lab.check`` in a solution passes;
* every learner exercise in ``exercises/`` stops at its first ``NotImplementedError`` (it
  neither hangs nor fails earlier for another reason).

Each notebook gets its own engine (virtual clock, in memory) and its own papermill subprocess
with a hard timeout, like the grader does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from lab_support.checks import CHECK_MIMETYPE
from lab_support.engine_process import EngineProcess

ROOT = Path(__file__).resolve().parents[1]
CELL_TIMEOUT_S = 180
PROCESS_TIMEOUT_S = 420

pytestmark = [pytest.mark.notebook, pytest.mark.slow, pytest.mark.timeout(PROCESS_TIMEOUT_S + 60)]


def run_papermill(source: Path, out_dir: Path, engine_url: str, *, as_grader: bool):
    """Execute ``source`` into ``out_dir``; returns (exit code, executed notebook, log text)."""
    executed = out_dir / source.name
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONUNBUFFERED="1")
    env.pop("INNGEST_DEV", None)
    cmd = [sys.executable, "-m", "papermill", str(source), str(executed), "-k", "python3",
           "--cwd", str(ROOT), "--no-progress-bar", "--execution-timeout", str(CELL_TIMEOUT_S)]
    if as_grader:  # solutions and exercises read the engine from the injected parameter
        cmd += ["-p", "grading", "True", "-r", "engine_url", engine_url]
    else:  # concept notebooks call lab.start() plainly; INNGEST_DEV points it at our engine
        env["INNGEST_DEV"] = engine_url
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                              timeout=PROCESS_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{source.name} did not finish within {PROCESS_TIMEOUT_S} s "
                    f"(papermill output: {str(exc.stderr)[-2000:]})")
    nb = nbformat.read(str(executed), as_version=4) if executed.exists() else None
    return proc.returncode, nb, proc.stderr[-4000:]


def errors(nb) -> list[tuple[str, str]]:
    return [(out.get("ename", ""), out.get("evalue", ""))
            for cell in nb.cells if cell.cell_type == "code"
            for out in cell.get("outputs", []) if out.get("output_type") == "error"]


def check_records(nb) -> list[dict]:
    return [out["data"][CHECK_MIMETYPE]
            for cell in nb.cells if cell.cell_type == "code"
            for out in cell.get("outputs", []) if CHECK_MIMETYPE in out.get("data", {})]


# What each concept notebook claims in its prose and predictions, as printed by its own demos.
# If the engine's behaviour drifts, the notebook would teach something false: fail here.
CLAIMS = {
    "00_quick_win.ipynb": [
        "step bodies run by this attempt: {'compose-greeting': 1, 'compose-farewell': 5}",
        "step bodies run by the rerun from the failed step: {'compose-farewell': 1}",
        "step bodies run by a plain rerun: {'compose-greeting': 1, 'compose-farewell': 1}",
    ],
    "01_events_vs_requests.ipynb": [
        "event model, peak open parser connections: 1",
        "50 drafts; 50 save-draft executions",
    ],
    "02_cron_triggers.ipynb": ["7 daily runs; 35 customer checks"],
    "03_webhook_triggers.ipynb": [
        "runs for the Stripe event: 1", "runs for our own event:    0", "runs for this event: []",
    ],
    "11_concurrency_throttling.ipynb": [
        "events sent: 1000; runs of this burst: {'COMPLETED': 1000}",
        "skipped runs: 0 | events that started no run: 0",
        "peak executing steps: 10; c-angry at most 2",
        "so of c-angry's 100 emails, 98 waited behind its key while 2 were drafted",
        "steps executing at once: 10 (c-angry: 2)",
        "without the key: c-angry held up to 10 slots",
        "sleepy-drafts: 5 runs under limit=1 finished after 1 x the work time; runs in progress "
        "at once: 5; steps executing at once: 1",
        "busy-drafts: 5 runs under limit=1 finished after 5 x the work time",
        "the unthrottled burst got 429s: True; with Throttle(14/min): 0 429s",
    ],
    "12_priority_fairness.ipynb": [
        "drafts executing at once at most: 6",
        "at most 4 at once, 2 per customer",
        "without the key: t-big held up to 6 slots",
    ],
    "13_batching.ipynb": [
        "120 events -> 3 runs of sizes [50, 50, 20]; provider requests: 3",
        "runs after 30 s: 1 | events in it: [3]",
        "50 tickets: 50 provider requests one by one, 1 batched",
        "store failed once; provider requests for the batch: 1",
        "run FAILED; provider requests 3 carrying 150 texts; tickets embedded: 0 of 49",
        "fixed: run COMPLETED; provider requests 1; tickets embedded: 49 of 49; "
        "dead letters: ['t-poison']",
        "the store ran twice: 98 rows sent, 49 rows kept",
        "max_size=5: 12 events -> [5, 5, 2]",
        "Batch(timeout=timedelta(days=1)) is sent as: 1d",
    ],
    "04_idempotency.ipynb": [
        "step bodies run: {'lookup-order': 1, 'issue-provider-refund': 1, 'audit-refund': 1}",
        "money moved: 5000 cents for a 2500-cent refund",
        "provider calls: 2 | money moved for ch_7300: 2500 cents",
    ],
}


# Claims only the embedded engine can show (its virtual clock, the calls it holds in its queue);
# the real-server lane (tests/test_real_server.py) checks CLAIMS only.
EMBEDDED_CLAIMS = {
    "11_concurrency_throttling.ipynb": [
        "calls waiting for a slot while 10 executed: up to 990",
        "started at once: 101 (limit + burst = 101); start 102 came 36 s later; one start every "
        "36 s after that",
        "runs started within one period of the burst: 150 of 150 (limit 100 per period)",
        "longest wait to start: 0.0 s; 429s: 0",
    ],
    "12_priority_fairness.ipynb": [
        "start order within 9:00: ['B1', 'B2', 'A1', 'A2', 'C1', 'C2']",
        "pool-ranked: round 1 = A1 A2 B1 B2",
        "pool-unranked: round 1 = A1 A2 C1 C2",
        "with the tenant key, first draft in round: {'t-big': 1, 't-small-1': 1, 't-small-2': 1, "
        "'t-small-3': 2, 't-small-4': 2, 't-small-5': 3}",
        "without the tenant key, first draft in round: {'t-big': 1, 't-small-1': 5",
        "order after the long job: ['E1', 'F', 'E3', 'E2']",
    ],
    "13_batching.ipynb": [
        "ctx.event in each run is the batch's first event: ['t-0', 't-50', 't-100']",
        "runs after 29 s: 0",
        "embed-parallel: 3 batches; embed requests in flight at most: 3",
        "embed-one-at-a-time: 3 batches; embed requests in flight at most: 1",
        "sync refused: batch-lab-embed-fifty: batch_size_too_large",
        "batch + priority: refused: batching cannot be combined with priority",
        "batch + cancel: refused: batching cannot be combined with cancel",
        "10,000 events, max_size=50: 200 run(s): 200 completed",
    ],
}


def printed(nb) -> str:
    return "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                   for out in cell.get("outputs", []) if out.get("output_type") == "stream")


@pytest.fixture
def engine_url():
    proc = EngineProcess(memory=True).start()
    try:
        yield proc.url
    finally:
        proc.stop()



@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("*.ipynb")),
                         ids=lambda p: p.name)
def test_concept_notebook_runs_clean(path, tmp_path, engine_url):
    code, nb, log = run_papermill(path, tmp_path, engine_url, as_grader=False)
    assert code == 0 and nb is not None, f"{path.name} failed: {errors(nb) if nb else ''}\n{log}"
    text = printed(nb)
    missing = [claim for claim in CLAIMS.get(path.name, []) + EMBEDDED_CLAIMS.get(path.name, [])
               if claim not in text]
    assert not missing, f"{path.name} no longer shows {missing}; it printed:\n{text}"



@pytest.mark.parametrize("path", sorted((ROOT / "solutions").glob("*.ipynb")),
                         ids=lambda p: p.name)
def test_solution_runs_with_full_marks(path, tmp_path, engine_url):
    code, nb, log = run_papermill(path, tmp_path, engine_url, as_grader=True)
    assert code == 0 and nb is not None, f"{path.name} failed: {errors(nb) if nb else ''}\n{log}"
    records = check_records(nb)
    assert records, "the solution recorded no checks"
    failed = [(r["name"], r.get("message")) for r in records if not r["passed"]]
    assert not failed, failed



@pytest.mark.parametrize("path", sorted((ROOT / "exercises").glob("*.ipynb")),
                         ids=lambda p: p.name)
def test_exercise_stops_at_its_first_placeholder(path, tmp_path, engine_url):
    code, nb, log = run_papermill(path, tmp_path, engine_url, as_grader=True)
    assert code != 0 and nb is not None, f"an untouched exercise should not run to the end\n{log}"
    assert [e[0] for e in errors(nb)] == ["NotImplementedError"], errors(nb)
    assert not [r for r in check_records(nb) if r["passed"]], "no marks for untouched work"
