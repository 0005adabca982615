"""Engine benchmark: event -> completion latency and burst throughput.

    python benchmarks/engine_latency.py [--runs 5] [--burst 200] [--state disk|memory]
                                        [--compare http://127.0.0.1:8288]

Two measurements per engine, with the official SDK serving the functions from a FastAPI app
(``lab_support.host.ThreadedHost`` + ``inngest.fast_api.serve``):

* latency: the median over ``--runs`` events of the time from sending the event to the
  function's final invocation returning, for an 11-step function (10 ``step.run`` + 1);
* burst: the wall time for ``--burst`` one-step runs sent in one request to all finish.

"Finished" is observed inside the function host (the handler records its run id as it returns),
because the real dev server caches its REST answers for seconds; every run's final status is then
confirmed through GraphQL, outside the timing. The embedded engine is started here on a free port
(or ``--engine-url`` names a running one); ``--compare URL`` adds a real dev server in the same
run. Ratios are printed against the numbers measured on a real dev server on this kind of
machine (2 cores): 1.80 s latency, 200 runs in 3.06 s (65 runs/s).

``--state disk`` (the default, as ``lab.start`` runs it) keeps the engine's state in SQLite in
a temporary folder, so every ``POST /e`` waits for its durable commit; ``--state memory``
measures the engine without SQLite.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable as a script before `pip install -e .`
    sys.path.insert(0, str(ROOT))

import inngest  # noqa: E402
import inngest.fast_api  # noqa: E402
from fastapi import FastAPI  # noqa: E402

from lab_support.engine_process import EngineProcess  # noqa: E402
from lab_support.host import ThreadedHost  # noqa: E402

BASELINE_LATENCY_S = 1.80
BASELINE_BURST_S = 3.06  # 200 one-step runs
BASELINE_RUNS_PER_S = 65.0
APP_ID = "engine-bench"
ELEVEN_EVENT, ONE_EVENT = "bench/eleven-steps", "bench/one-step"
SERVE_PATH = "/api/inngest"
EVENT_KEY = "bench"


class Finished:
    """Run ids by event token, filled in by the handlers as their runs return."""

    def __init__(self) -> None:
        self._done: dict[str, tuple[float, str]] = {}
        self._cond = threading.Condition()

    def mark(self, token: str, run_id: str) -> None:
        with self._cond:
            self._done.setdefault(token, (time.perf_counter(), run_id))
            self._cond.notify_all()

    def wait(self, tokens: list[str], timeout: float) -> dict[str, tuple[float, str]]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not all(t in self._done for t in tokens):
                left = deadline - time.monotonic()
                if left <= 0:
                    missing = sum(t not in self._done for t in tokens)
                    raise TimeoutError(f"{missing} of {len(tokens)} runs did not finish "
                                       f"within {timeout:g} s")
                self._cond.wait(left)
            return {t: self._done[t] for t in tokens}


def build_functions(client: inngest.Inngest, finished: Finished) -> list:
    async def value(x: int) -> int:
        return x

    @client.create_function(fn_id="bench-eleven-steps", retries=0,
                            trigger=inngest.TriggerEvent(event=ELEVEN_EVENT))
    async def eleven_steps(ctx: inngest.Context) -> int:
        total = 0
        for i in range(10):
            total += await ctx.step.run(f"step-{i}", value, i)
        result = await ctx.step.run("final", value, total)
        finished.mark(ctx.event.data["token"], ctx.run_id)  # reached only on the last call
        return result

    @client.create_function(fn_id="bench-one-step", retries=0,
                            trigger=inngest.TriggerEvent(event=ONE_EVENT))
    async def one_step(ctx: inngest.Context) -> int:
        result = await ctx.step.run("only", value, 1)
        finished.mark(ctx.event.data["token"], ctx.run_id)
        return result

    return [eleven_steps, one_step]


@dataclass
class Result:
    target: str
    latency_s: float
    burst_s: float
    burst: int

    @property
    def runs_per_s(self) -> float:
        return self.burst / self.burst_s


class Target:
    """One engine plus a function host synced to it."""

    def __init__(self, name: str, url: str, embedded: bool) -> None:
        self.name, self.url, self.embedded = name, url.rstrip("/"), embedded
        self.finished = Finished()
        quiet = logging.getLogger(f"bench.{name}")
        quiet.setLevel(logging.WARNING)
        client = inngest.Inngest(app_id=APP_ID, is_production=False, api_base_url=self.url,
                                 event_api_base_url=self.url, logger=quiet)
        app = FastAPI()
        inngest.fast_api.serve(app, client, build_functions(client, self.finished),
                               serve_path=SERVE_PATH)
        self.host = ThreadedHost(app)
        self.http = httpx.Client(timeout=30)

    def __enter__(self) -> "Target":
        self.host.start()
        serve_url = self.host.url + SERVE_PATH
        if self.embedded:
            resp = self.http.post(f"{self.url}/lab/v1/sync", json={"url": serve_url})
        else:  # a real dev server: ask the SDK to register itself, as the dev server does
            resp = self.http.put(serve_url, headers={"X-Inngest-Server-Kind": "dev"})
        if resp.status_code >= 400:
            raise RuntimeError(f"sync with {self.name} failed: HTTP {resp.status_code} {resp.text[:300]}")
        return self

    def __exit__(self, *exc) -> None:
        self.http.close()
        self.host.stop()

    def send(self, name: str, tokens: list[str]) -> float:
        started = time.perf_counter()
        resp = self.http.post(f"{self.url}/e/{EVENT_KEY}",
                              json=[{"name": name, "data": {"token": t}} for t in tokens])
        if resp.status_code != 200:
            raise RuntimeError(f"{self.name} refused the events: {resp.status_code} {resp.text[:300]}")
        return started

    def run_status(self, run_id: str) -> str | None:
        # Inline id: the servers' schemas type the argument differently (ULID vs String).
        query = "query { run(runID: %s) { status } }" % json.dumps(run_id)
        resp = self.http.post(f"{self.url}/v0/gql", json={"query": query})
        run = ((resp.json().get("data") or {}).get("run") or {})
        return run.get("status")

    def confirm_completed(self, run_ids: list[str], timeout: float) -> None:
        """Outside the timing: the engine itself must agree every run completed."""
        pending = set(run_ids)
        deadline = time.monotonic() + timeout
        while pending:
            pending = {r for r in pending if self.run_status(r) != "COMPLETED"}
            if pending and time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: {len(pending)} runs are not COMPLETED after "
                                   f"{timeout:g} s (e.g. {sorted(pending)[0]})")
            if pending:
                time.sleep(0.2)

    def latency(self, runs: int, timeout: float) -> float:
        samples, run_ids = [], []
        for _ in range(runs):
            token = uuid.uuid4().hex
            started = self.send(ELEVEN_EVENT, [token])
            done_at, run_id = self.finished.wait([token], timeout)[token]
            samples.append(done_at - started)
            run_ids.append(run_id)
        self.confirm_completed(run_ids, timeout)
        return statistics.median(samples)

    def burst(self, count: int, timeout: float) -> float:
        tokens = [uuid.uuid4().hex for _ in range(count)]
        started = self.send(ONE_EVENT, tokens)
        done = self.finished.wait(tokens, timeout)
        elapsed = max(t for t, _ in done.values()) - started
        self.confirm_completed([r for _, r in done.values()], timeout)
        return elapsed

    def measure(self, runs: int, burst: int, timeout: float) -> Result:
        self.finished.wait([self._warm_up()], timeout)  # first-call costs are not the engine's
        return Result(self.name, self.latency(runs, timeout), self.burst(burst, timeout), burst)

    def _warm_up(self) -> str:
        token = uuid.uuid4().hex
        self.send(ONE_EVENT, [token])
        return token


def table(results: list[Result]) -> str:
    lines = [f"{'engine':<34}{'11-step latency':>17}{'burst wall time':>17}{'runs/s':>9}"
             f"{'latency vs base':>17}{'throughput vs base':>20}"]
    lines.append(f"{'baseline: real dev server (2 cores)':<34}{BASELINE_LATENCY_S:>16.2f}s"
                 f"{BASELINE_BURST_S:>16.2f}s{BASELINE_RUNS_PER_S:>9.0f}{'1.00x':>17}"
                 f"{'1.00x':>20}")
    for r in results:
        lines.append(f"{r.target:<34}{r.latency_s:>16.3f}s{r.burst_s:>16.2f}s{r.runs_per_s:>9.0f}"
                     f"{r.latency_s / BASELINE_LATENCY_S:>16.2f}x"
                     f"{r.runs_per_s / BASELINE_RUNS_PER_S:>19.2f}x")
    if len(results) == 2:
        a, b = results
        lines.append(f"\n{a.target} vs {b.target}: latency {a.latency_s / b.latency_s:.2f}x, "
                     f"throughput {a.runs_per_s / b.runs_per_s:.2f}x")
    lines.append("(ratios: latency lower is better, throughput higher is better; "
                 "the baseline burst is 200 runs)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="latency samples (median)")
    parser.add_argument("--burst", type=int, default=200, help="one-step runs in the burst")
    parser.add_argument("--compare", metavar="URL", help="a real Inngest dev server to measure too")
    parser.add_argument("--engine-url", help="use this running embedded engine instead of starting one")
    parser.add_argument("--timeout", type=float, default=120, help="seconds for any one wait")
    parser.add_argument("--state", choices=("disk", "memory"), default="disk",
                        help="the started engine's state: SQLite in a temp folder (durable "
                             "acknowledgements, the default) or memory")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.burst < 1 or args.timeout <= 0:
        parser.error("--runs, --burst and --timeout must be positive")

    results = []
    with tempfile.TemporaryDirectory(prefix="engine-bench-") as state_dir:
        engine = None
        if not args.engine_url:
            engine = (EngineProcess(memory=True, clock="real") if args.state == "memory" else
                      EngineProcess(state_dir=state_dir, clock="real"))
        name = "embedded engine" + ("" if args.engine_url else f" ({args.state})")
        try:
            url = args.engine_url or engine.start().url
            with Target(name, url, embedded=True) as target:
                results.append(target.measure(args.runs, args.burst, args.timeout))
        finally:
            if engine:
                engine.stop()
    if args.compare:
        try:
            httpx.get(args.compare.rstrip("/") + "/health", timeout=5).raise_for_status()
        except httpx.HTTPError as exc:
            parser.exit(2, f"--compare {args.compare}: no dev server answers there ({exc})\n")
        with Target(f"real dev server {args.compare}", args.compare, embedded=False) as target:
            results.append(target.measure(args.runs, args.burst, args.timeout))
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
