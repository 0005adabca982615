"""The ``lab`` object: start, observe and control durable runs from a notebook.

One instance per kernel (``from lab_support import lab``). Every method is safe to re-run
out of order: ``start`` stops the previous host first and reuses the engine it started.
"""

from __future__ import annotations

import atexit
import html
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from . import tracing
from .client import EngineClient, LabClientError, NotOnRealServer
from .controls import Chaos, Clock, real_server_notice
from .display import in_kernel, notebook_name, show, table_html
from .engines import (
    AdoptedEngine,
    EngineChoice,
    RealDevProcess,
    lab_state_dir,
    pick_engine,
    running_engine,
    start_embedded,
)
from .function_host import (
    ProcessHost,
    ThreadHost,
    build_app,
    importable_module,
    make_client,
    sync,
)
from .host import HostError, free_port
from .runs import RunList, normalize_status

DEFAULT_WAIT_S = 30.0
# On a real dev server one production hour lasts this many real seconds (see lab.hours).
REAL_SECONDS_PER_HOUR = 10.0
# On a real dev server the lab's host asks for retries after this many seconds (Retry-After).
REAL_RETRY_AFTER_S = 2.0


class Lab:
    def __init__(self) -> None:
        self.api: EngineClient | None = None
        self.engine_choice: EngineChoice | None = None
        self._engine_arg: str | None = None
        self._engine_proc = None  # EngineProcess | RealDevProcess when this kernel started it
        self._host: ThreadHost | ProcessHost | None = None
        self._env_before: tuple[bool, str | None] | None = None
        self.app_id: str | None = None
        self.functions: list = []
        self.serve_client = None
        self.predictions: dict[str, Any] = {}
        self.state_dir: Path = lab_state_dir()
        self.seconds_per_hour = REAL_SECONDS_PER_HOUR
        self.retry_after_s: float | None = REAL_RETRY_AFTER_S
        self.clock = Clock(self)
        self.chaos = Chaos(self)
        self._served_app = None  # lab.start(app=...): the app being served (worker_host)
        self._worker_env = None
        self._schedule_clock = None  # real server, app mode: the Worker's clock (worker_host)
        self._model = None
        if in_kernel():  # a learner's kernel: lab.check results feed lab.progress()
            from .progress import keep_check_results

            keep_check_results(self.state_dir)
        # A kernel shut down without lab.stop() must not leave its engine running.
        atexit.register(self.stop, quiet=True)

    # ------------------------------------------------------------------ start / stop
    def start(self, functions=None, app_id: str | None = None, engine: str = "auto",
              host: str = "thread", *, port: int | None = None,
              engine_port: int | None = None, memory: bool = False,
              quiet: bool = False, app=None, tier: str | None = None) -> "Lab":
        """Pick and start the engine, serve ``functions`` (or a whole ASGI ``app``) from a
        host, sync, show status. ``tier="hobby"`` or ``"pro"`` makes the embedded engine
        enforce that plan's limits (None: no plan limits)."""
        if app is not None:
            return self._start_app(app, functions, app_id, engine, host, port=port,
                                   engine_port=engine_port, memory=memory, quiet=quiet,
                                   tier=tier)
        functions = _as_function_list(functions)
        app_id = app_id or _infer_app_id(functions)
        _check_ids(functions, app_id)
        if host not in ("thread", "process"):
            raise ValueError(f"host must be 'thread' or 'process', not {host!r}")
        self._stop_host()  # a re-run must never leave the previous host serving
        self.state_dir = lab_state_dir()
        port = port or free_port()  # known up front: `inngest dev -u` needs the host URL
        self._ensure_engine(engine, engine_port=engine_port, memory=memory, host_port=port)
        self.app_id, self.functions = app_id, functions
        self.serve_client = make_client(app_id, self.api.url)
        if host == "thread":
            self._host = ThreadHost(build_app(self.serve_client, functions), port=port).start()
        else:
            module = importable_module(functions)
            self._host = ProcessHost(module, [f.id for f in functions], app_id, self.api.url,
                                     log_path=self.state_dir / "process-host.log",
                                     port=port)
            self._host.seconds_per_hour = self.seconds_per_hour
            self._host.start()
        if isinstance(self._engine_proc, RealDevProcess) and not self._engine_proc.alive():
            self._engine_proc.start()
        self._configure_host()
        self.set_tier(tier)  # before the sync: a plan's limits apply to it
        sync(self._host.url)
        self._clear_chaos("lab.start", quiet)
        if not quiet:
            self.status()
        return self

    def update(self, functions=None, *, app=None) -> "Lab":
        """Serve new versions of the functions (or of the app) on the same engine, re-sync."""
        if app is not None or self._served_app is not None:
            return self._update_app(app, functions)
        if self._host is None or self.api is None:
            raise RuntimeError("Nothing is running yet: call lab.start(functions) first.")
        functions = _as_function_list(functions) if functions is not None else self.functions
        _check_ids(functions, self.app_id)
        self.functions = functions
        if isinstance(self._host, ThreadHost):
            self._host.swap(build_app(self.serve_client, functions))
        else:
            self._host.stop()
            self._host.module = importable_module(functions)
            self._host.fn_ids = [f.id for f in functions]
            self._host.start()
            self._configure_host()
        sync(self._host.url)
        self._clear_chaos("lab.update", quiet=False)
        return self

    def _configure_host(self) -> None:
        """On a real dev server the host shortens retry backoff (``retry_after_s``) and
        records the calls it answers (``lab.stats``)."""
        if self._host is None or self.api is None:
            return
        real = self.api.kind != "embedded"
        try:
            httpx.put(self._host.faults_url + "/settings", timeout=10,
                      json={"retry_after_s": self.retry_after_s if real else None,
                            "record_calls": real}).raise_for_status()
        except httpx.HTTPError as exc:
            raise HostError(f"The function host did not take its settings: {exc}") from exc

    def require_embedded(self, what: str) -> None:
        """Raise ``NotOnRealServer`` on a real dev server: in a graded check, for a property
        only the embedded engine shows (the check is then recorded skipped, not failed)."""
        if self._require_engine().kind != "embedded":
            raise NotOnRealServer(f"{what} cannot be observed on a real dev server.")

    def embedded_only(self, what_you_would_see: str) -> bool:
        """For a cell with no real-server equivalent: True on the embedded engine; on a real
        dev server, shows what the learner would have seen there and returns False."""
        if self._require_engine().kind == "embedded":
            return True
        from .controls import real_server_notice

        real_server_notice(f"skipped here (embedded engine only). There you would see: "
                           f"{what_you_would_see}")
        return False

    def _clear_chaos(self, who: str, quiet: bool) -> None:
        """New code starts with no faults armed for the old code (see lab.chaos)."""
        removed = self.chaos.clear_leftovers()
        if removed and not quiet:
            what = ", ".join(f"{r['mode']} on {r['step']!r} ({r['remaining']} left)" for r in removed)
            print(f"{who}: removed {len(removed)} chaos rule(s) armed earlier: {what}")

    def _ensure_engine(self, engine: str, *, engine_port, memory, host_port) -> None:
        if self.api is not None and self._engine_arg == engine and self._engine_alive():
            return  # re-run: keep the engine and its runs
        self._stop_engine()
        choice = pick_engine(engine)
        if choice.mode == "url":
            self._set_engine(choice, EngineClient(choice.url), None)
        elif choice.mode == "embedded":
            found = None if memory else running_engine(self.state_dir)
            if found is not None:
                proc = AdoptedEngine(self.state_dir, found)
                choice = EngineChoice("embedded", f"reusing the engine already serving "
                                      f"{self.state_dir} (pid {proc.pid})")
            else:
                proc = start_embedded(self.state_dir, engine_port, memory=memory)
            self._set_engine(choice, EngineClient(proc.url), proc)
        else:  # an `inngest` binary: start() launches it once the host is up
            proc = RealDevProcess(choice.binary, f"http://127.0.0.1:{host_port}/api/inngest",
                                  port=engine_port)
            self._set_engine(choice, EngineClient(proc.url), proc)
        self._engine_arg = engine

    def _set_engine(self, choice, api, proc) -> None:
        self.engine_choice, self.api, self._engine_proc = choice, api, proc
        if "INNGEST_DEV" not in os.environ or self._env_before is not None:
            # Clients the learner makes later (inngest.Inngest(...)) find this engine.
            if self._env_before is None:
                self._env_before = ("INNGEST_DEV" in os.environ, os.environ.get("INNGEST_DEV"))
            os.environ["INNGEST_DEV"] = api.url

    def _engine_alive(self) -> bool:
        if self._engine_proc is not None and not self._engine_proc.alive():
            return False
        return self.api is not None and self.api.healthy()

    def _require_engine(self) -> EngineClient:
        if self.api is None:
            raise RuntimeError("No engine yet: call lab.start(functions) first.")
        return self.api

    def _stop_host(self) -> None:
        if self._host is not None:
            self._host.stop()
            self._host = None
        if self._worker_env is not None:
            from .worker_host import release

            release(self)

    def _stop_engine(self) -> None:
        if self._engine_proc is not None:
            self._engine_proc.stop()
        if self.api is not None:
            self.api.close()
        self._engine_proc, self.api, self.engine_choice, self._engine_arg = None, None, None, None
        self.clock = Clock(self)  # a new engine starts a new schedule cursor
        if self._env_before is not None:
            existed, value = self._env_before
            if existed:
                os.environ["INNGEST_DEV"] = value or ""
            else:
                os.environ.pop("INNGEST_DEV", None)
            self._env_before = None

    def stop(self, quiet: bool = False) -> None:
        """Stop the host and the engine this kernel started (a running dev server is left
        alone), and say what was stopped."""
        said = self._stop_summary()
        self._stop_host()
        if self._model is not None:
            self._model.stop()
        self._stop_engine()
        if not quiet:
            print(said)

    def _stop_summary(self) -> str:
        parts = []
        if self._host is not None:
            parts.append(f"the function host ({self._host.kind}, {self._host.url})")
        proc, api = self._engine_proc, self.api
        left = ""
        if api is not None:
            url = api.url
            if proc is None:
                left = f" The engine at {url} was not started by this kernel and keeps running."
            elif getattr(proc, "owned", True) is False:
                left = (f" The engine at {url} belongs to another kernel and keeps running.")
            elif isinstance(proc, RealDevProcess):
                parts.append(f"the inngest dev server at {url}")
            else:
                kept = ("its runs were in memory and are gone" if getattr(proc, "memory", False)
                        else f"its runs are kept in {self.state_dir / 'engine'}")
                parts.append(f"the embedded engine at {url} ({kept})")
        if not parts:
            return "lab.stop: nothing was running." + left
        return "lab.stop: stopped " + " and ".join(parts) + "." + left

    def reset(self) -> None:
        """Start this notebook's demos over without restarting the kernel: the embedded
        engine forgets every run, event (and so every event-id dedup), queued step, pause
        and chaos rule. Synced apps and functions stay, and so does the virtual clock's time."""
        if self.api is None:
            print("lab.reset: nothing to reset yet (lab.start(...) starts the engine).")
            return
        if self.api.kind != "embedded":
            # A setup cell that ends in lab.reset() must still run here: say what is kept
            # instead of stopping the notebook (only the host-side chaos rules are cleared).
            if self._host is not None:
                self.chaos.clear()
            real_server_notice(
                "lab.reset clears the lab's embedded engine only: this server keeps its runs "
                "and event ids (a re-sent id is still deduplicated). For a clean slate, stop "
                "`inngest dev`, start it again, then run lab.start(...) again.")
            return
        self.api.lab_call("POST", "reset", "lab.reset")
        self.chaos._armed_in_cell.clear()
        kept = ", ".join(f.id for f in self.functions) or "none"
        print(f"lab.reset: the engine forgot every run, event, queued step and chaos rule. "
              f"Still synced: {kept}.")

    def progress(self):
        """How far you are: per notebook, predictions answered and exercise checks passed."""
        from .progress import progress

        return progress(self.state_dir).show()

    # ------------------------------------------------------------------ host crash demo
    def kill_host(self) -> None:
        """Kill the worker process (SIGKILL) wherever it is; runs wait for it to return.
        The virtual clock's auto-advance is paused meanwhile, so retries do not burn out."""
        if not isinstance(self._host, ProcessHost):
            raise RuntimeError("kill_host needs lab.start(..., host='process'): a thread "
                               "inside this kernel cannot be killed without killing the kernel.")
        if self.api.kind == "embedded":
            self.clock.auto(False)
        self._host.kill()

    def restart_host(self) -> None:
        if not isinstance(self._host, ProcessHost):
            raise RuntimeError("restart_host needs lab.start(..., host='process').")
        self._host.start()
        self._configure_host()
        sync(self._host.url)
        if self.api.kind == "embedded":
            self.clock.auto(True)

    # ------------------------------------------------------------------ status panel
    def status(self) -> dict:
        api = self._require_engine()
        info = {
            "engine": api.kind,
            "version": api.version,
            "engine_url": api.url,
            "dashboard": api.url + "/",
            "host": self._host.url if self._host else "(not running)",
            "host_kind": self._host.kind if self._host else "",
            "app_id": self.app_id,
            "functions": [f.id for f in self.functions],
            "why": self.engine_choice.reason if self.engine_choice else "",
        }
        if api.kind == "embedded":
            info["state"] = str(self.state_dir)
        rows = [("engine", f"{info['engine']} {info['version']}"),
                ("dashboard", info["dashboard"]),
                ("host", f"{info['host']} ({info['host_kind']})"),
                ("functions", ", ".join(info["functions"]) or "none"),
                ("picked because", info["why"])]
        if api.kind != "embedded":
            retries = (f"after {self.retry_after_s:g} s (Retry-After from the lab's host)"
                       if self.retry_after_s else "the server's own backoff (15 s ... 2 h)")
            info["real_server"] = (
                f"lab.hours(1) = {self._duration(3600).total_seconds():g} s; retries "
                f"{retries}; chaos in the lab's host; cron ticks fired by lab.clock")
            rows.append(("on this server", info["real_server"]))
        html_rows = [(k, f"<a href='{html.escape(v)}' target='_blank'>{html.escape(v)}</a>"
                      if k == "dashboard" else html.escape(v)) for k, v in rows]
        show(text="lab ready\n" + "\n".join(f"{k:>14}: {v}" for k, v in rows),
             html_text=table_html(html_rows, "lab ready", "lab-status"))
        return info

    # ------------------------------------------------------------------ events and runs
    def send(self, name: str, data: dict | list[dict] | None = None, id: str | None = None,
             ts: datetime | None = None) -> list[str]:
        """Send one event (or one per item when ``data`` is a list); returns event ids."""
        if not isinstance(name, str) or not name:
            raise ValueError("send needs an event name, e.g. lab.send('support/email.received', {...})")
        items = data if isinstance(data, list) else [data or {}]
        if id is not None and len(items) != 1:
            raise ValueError("id= dedupes one event; send a single data dict with it.")
        events = []
        for item in items:
            if not isinstance(item, dict):
                raise ValueError(f"event data must be a dict, got {type(item).__name__}")
            event = {"name": name, "data": item}
            if id is not None:
                event["id"] = id
            if ts is not None:
                event["ts"] = int(ts.timestamp() * 1000)
            events.append(event)
        return self._require_engine().send(events)

    def _slug(self, function: Any) -> str:
        if hasattr(function, "id") and not isinstance(function, str):
            return function.id
        if not isinstance(function, str) or not function:
            raise ValueError(f"a function is a Function object or its id, not {function!r}")
        ids = {f.id for f in self.functions}
        if function not in ids and self.app_id and f"{self.app_id}-{function}" in ids:
            return f"{self.app_id}-{function}"
        return function

    def runs(self, event_id: str | None = None, function: Any = None, status: Any = None,
             since: datetime | None = None, until: datetime | None = None) -> RunList:
        """Runs, newest first, filtered by triggering event, function, status and time."""
        api = self._require_engine()
        fn_ids = [api.function_id(self._slug(function))] if function is not None else None
        statuses = normalize_status(status)
        found = api.runs(function_ids=fn_ids, status=statuses, since=self._at(since),
                         until=self._at(until, strict=True))
        if event_id is not None:
            found = [r for r in found if event_id in (r.get("triggerIDs") or [])]
        return RunList(found)

    def _at(self, when: Any, *, strict: bool = False) -> Any:
        """A window bound in lab time, as the server's time (they differ only on a real
        server after ``lab.clock.advance``)."""
        return self.clock.server_time(when, strict=strict)

    def run(self, run_id: str) -> dict:
        return self._require_engine().run(run_id)

    def wait(self, target: Any, status: Any = None, timeout: float = DEFAULT_WAIT_S,
             *, at_least: int = 1):
        """Wait until the run(s) finish (or reach ``status``). ``target``: a run id, an event
        id, or a list of them (``lab.send(...)`` returns event ids). Returns the run, or a
        list when there are several. A Function object as ``target`` waits until none of its
        runs is queued or running (a burst) and at least ``at_least`` runs of it exist in all
        (for batches still collecting events, which are no run yet), and returns its runs
        counted per status."""
        from .waiting import wait_for

        if hasattr(target, "id") and not isinstance(target, (str, list, tuple)):
            from .function_wait import wait_for_function

            if status is not None:
                raise ValueError("lab.wait(function) waits for every run to finish; status= "
                                 "belongs to waits on run or event ids")
            return wait_for_function(self, target, timeout=timeout, at_least=at_least)
        return wait_for(self, target, status=status, timeout=timeout)

    def trace(self, run_id: str, outputs: bool = True):
        """The run's steps as a table: step, op, attempts, times, status, executed or memo
        hit, and a short output."""
        api = self._require_engine()
        span_tree = api.trace(run_id, memo_field=api.kind == "embedded", settle=True)
        values = {}
        if outputs:
            ids = [s["outputID"] for s in tracing.step_spans(span_tree) if s.get("outputID")]
            for output_id in ids + tracing.attempt_output_ids(span_tree):
                try:
                    values[output_id] = tracing.output_value(api.span_output(output_id))
                except LabClientError:
                    values[output_id] = None
        return tracing.trace_frame(tracing.trace_rows(span_tree, values))

    # ------------------------------------------------------------------ invoke and events
    def invoke(self, function: Any, data: dict | None = None) -> str:
        """Invoke ``function`` by hand, as the dashboard's Invoke and GraphQL
        ``invokeFunction`` do: an ``inngest/function.invoked`` event with ``data`` (a cron
        function gets no ``scheduledAt``). Returns the new run's id."""
        from .invoking import invoke

        return invoke(self, function, data)

    def events(self, name: str | None = None, unmatched: bool = False,
               since: datetime | None = None):
        """Events newest first, each with the run ids it started (``unmatched=True``: only
        the ones that started no run). A table in a notebook, a list for code."""
        from .eventlist import fetch

        return fetch(self._require_engine(), name, unmatched, self._at(since))

    # ------------------------------------------------------------------ measuring
    def stats(self, function: Any = None, key: str | None = None):
        """Executing steps (SDK calls in flight) over engine time, for one function or all:
        ``.peak``, ``.peaks`` per value of ``key`` (default: the function's keyed concurrency
        limit), ``.series`` (time, executing, queued)."""
        from . import stepstats

        api = self._require_engine()
        slug = self._slug(function) if function is not None else None
        if key is None and slug is not None:
            key = stepstats.default_key(api.function_config(slug))
        if api.kind == "embedded":
            return stepstats.from_engine(api, slug, key)
        calls = self._host_calls(slug)  # a real server: what the lab's host answered, if it
        if calls:                       # served the function (see lab_support/host_calls.py)
            return stepstats.from_host(calls, slug, key)
        return stepstats.from_traces(api, slug, key)

    def _host_calls(self, slug: str | None) -> list:
        if self._host is None:
            return []
        try:
            resp = httpx.get(self._host.faults_url + "/calls", timeout=30,
                             params={"function": slug} if slug else None)
            resp.raise_for_status()
            return resp.json().get("calls") or []
        except (httpx.HTTPError, ValueError):
            return []  # a host that cannot tell: the traces can

    def executions(self, function: Any = None, since: datetime | None = None,
                   until: datetime | None = None):
        """What Inngest bills for the runs queued in the window: ``.runs``, ``.steps``,
        ``.attempts``, ``.executions`` (= runs + attempts) and ``.by_function``."""
        from . import executions as billing

        api = self._require_engine()
        slug = self._slug(function) if function is not None else None
        if api.kind == "embedded":
            return billing.from_engine(api, slug, since, until)
        return billing.from_traces(api, slug, self._at(since), self._at(until, strict=True))

    # ------------------------------------------------------------------ recovery
    def rerun(self, run_id: str, from_step: str | None = None) -> str:
        """Inngest's Rerun: a new run with the same event. ``from_step=None`` executes every
        step again; a step id reruns from that step (earlier steps come back as memo).
        Returns the new run's id."""
        from .recovery import rerun

        return rerun(self, run_id, from_step)

    def failed_step(self, run_id: str) -> str | None:
        """The id of the run's failed step (None when no step failed)."""
        from .recovery import failed_step

        return failed_step(self._require_engine(), run_id)

    def rerun_failed(self, function: Any, since: datetime | None = None,
                     until: datetime | None = None) -> list[str]:
        """Rerun every failed run of ``function`` in the window from its failed step;
        returns the new run ids."""
        from .recovery import rerun_failed

        return rerun_failed(self, function, since, until)     # lab.runs maps the window

    def replay(self, function: Any, since: datetime | None = None,
               until: datetime | None = None, status: Any = ("FAILED",),
               error_contains: str | None = None) -> list[str]:
        """Inngest's bulk Replay: every run of ``function`` queued in the window with one of
        the statuses (and, optionally, that error text) runs again *from the start*.
        Returns the new run ids."""
        from .recovery import replay

        return replay(self, function, self._at(since), self._at(until, strict=True), status,
                      error_contains)

    def cancel(self, run_id: str) -> None:
        self._require_engine().cancel_run(run_id)

    def bulk_cancel(self, function: Any, since: datetime | None = None,
                    until: datetime | None = None, if_exp: str | None = None) -> list[str]:
        """Cancel runs of ``function`` started between ``since`` and ``until`` (optionally only
        those whose event matches the CEL ``if_exp``). Returns the cancelled run ids."""
        from .bulk import bulk_cancel

        return bulk_cancel(self, function, self._at(since), self._at(until, strict=True), if_exp)

    # ------------------------------------------------------------------ plan limits
    def set_tier(self, tier: str | None) -> dict | None:
        """Make the embedded engine enforce a plan's limits: "hobby", "pro", or None (no
        plan limits). Applies to later syncs and runs; returns the limits in force."""
        from .client import NotOnRealServer

        if tier is not None and (not isinstance(tier, str)
                                 or tier.lower() not in ("hobby", "pro")):
            raise ValueError(f'tier is "hobby", "pro" or None, not {tier!r}')
        api = self._require_engine()
        if api.kind != "embedded":
            if tier is None:
                return None
            raise NotOnRealServer(
                f"tier={tier!r} exists only in the lab's embedded engine: a real dev server has "
                "no plans. Use an Inngest Cloud account on that plan, or engine='embedded'.")
        return api.lab_call("POST", "tier", "lab.set_tier",
                            {"tier": tier.lower() if tier else None}).get("limits")

    # ------------------------------------------------------------------ durations
    def hours(self, n: float) -> timedelta:
        """A production duration for notebooks that must also finish on a real dev server:
        exact on the embedded engine (its virtual clock skips it), and on a real server one
        hour lasts ``lab.seconds_per_hour`` real seconds (default 10)."""
        return self._duration(n * 3600)

    def minutes(self, n: float) -> timedelta:
        return self._duration(n * 60)

    def days(self, n: float) -> timedelta:
        return self._duration(n * 86400)

    def _duration(self, seconds: float) -> timedelta:
        if self.api is None or self.api.kind == "embedded":
            return timedelta(seconds=seconds)
        scaled = seconds * self.seconds_per_hour / 3600
        return timedelta(seconds=max(1, round(scaled)))  # the SDK refuses < 1 s

    # ------------------------------------------------------------------ MCP (the agent's view)
    def mcp(self, tool: str | None = None, **arguments):
        """Call one of the dev server's MCP tools (``list_functions``, ``send_event``,
        ``poll_run_status`` ...) the way a coding agent does; shows the request and the
        answer and returns the parsed answer. ``lab.mcp()`` lists the tools and their
        parameters. Before ``lab.start`` it talks to ``INNGEST_DEV`` or 127.0.0.1:8288."""
        from . import mcp_client

        url = mcp_client.mcp_url(self.api.url if self.api is not None else None)
        if tool is None:
            return mcp_client.show_tools(url)
        return mcp_client.show_call(url, tool, arguments)

    # ------------------------------------------------------------------ widgets
    def predict(self, id: str, question: str, choices=None, answer=None, explain: str = "",
                tolerance: float = 0.05):
        from .predict import Prediction

        prediction = Prediction(id, question, choices=choices, answer=answer, explain=explain,
                                store=self.state_dir / "predictions.jsonl", tolerance=tolerance,
                                notebook=notebook_name())
        self.predictions[id] = prediction
        return prediction.show()

    def calibration(self):
        from .display import show_figure
        from .predict import calibration_figure, calibration_table, load_records

        table = calibration_table(load_records(self.state_dir / "predictions.jsonl"))
        show_figure(calibration_figure(table), alt="prediction calibration")
        return table

    def reliability(self, p: float = 0.95, n: int = 6, k: int = 3, cost: float = 0.05):
        from .reliability import reliability_widget

        return reliability_widget(p, n, k, cost)

    def watch(self, target: Any, until: Any = "done", lane: Any = "run",
              timeout: float = 60.0, interval: float = 0.5):
        """A live Gantt of the runs (a function, run ids or event ids) until they finish."""
        from .watching import watch

        return watch(self, target, until=until, lane=lane, timeout=timeout, interval=interval)

    def check(self, *args, **kwargs):
        from .checks import check

        return check(*args, **kwargs)

    # ------------------------------------------------------------------ the Worker under lab
    # (worker-cap: a whole app, the model endpoint, cost; logic in worker_host / model / cost)
    def _start_app(self, app, functions, app_id, engine, host, **options) -> "Lab":
        from .worker_host import EnvOverrides, start_app

        if functions is not None or app_id is not None:
            raise ValueError("lab.start(app=...) serves the functions the app serves: "
                             "pass either functions or app=, not both (nor app_id=).")
        self._worker_env = self._worker_env or EnvOverrides()
        started = start_app(self, app, engine=engine, host=host, **options)
        self._clear_chaos("lab.start", options.get("quiet", False))
        return started

    def _update_app(self, app, functions) -> "Lab":
        from .worker_host import update_app

        if app is None or functions is not None:
            raise ValueError("An app is being served: swap it with lab.update(app=new_app).")
        updated = update_app(self, app)
        self._clear_chaos("lab.update", quiet=False)
        return updated

    @property
    def host_url(self) -> str | None:
        """The host's base URL (POST ``lab.host_url + "/webhooks/postmark"``), or None."""
        if self._host is None:
            return None
        base = getattr(self._host, "base_url", None)
        return base or self._host.url.rsplit("/api/inngest", 1)[0]

    @property
    def model(self):
        """The offline model endpoint: ``.limit(rpm)``, ``.fail(times, status)``,
        ``.usage()``, ``.url``, ``.reset()`` (see ``lab_support.model``)."""
        if self._model is None:
            from .model import LabModel

            self._model = LabModel(self)
        return self._model

    def cost(self, executions=None, tokens=None, **assumptions):
        """Monthly cost per plan from measured executions (``lab.executions(...)``) and model
        tokens (``lab.model.usage()``): sliders and a plot (see ``lab_support.cost``)."""
        from .cost import cost_widget

        measure = getattr(self, "executions", None)  # lab.executions (engine-cap)
        if executions is None and self.api is not None and callable(measure):
            executions = measure()
        if tokens is None and self._model is not None and self._model.usage().requests:
            tokens = self._model.usage()
        return cost_widget(executions, tokens, **assumptions)

    def __repr__(self) -> str:
        if self.api is None:
            return "lab (not started: lab.start(functions))"
        return f"lab ({self.api.kind} engine at {self.api.url}, host {getattr(self._host, 'url', None)})"


def _as_function_list(functions) -> list:
    items = list(functions) if isinstance(functions, (list, tuple)) else [functions]
    if not items:
        raise ValueError("lab.start needs at least one function")
    for fn in items:
        if not (hasattr(fn, "id") and hasattr(fn, "_handler")):
            raise TypeError(f"{fn!r} is not an Inngest function: decorate it with "
                            "@client.create_function(...)")
    return items


def _infer_app_id(functions: list) -> str:
    # create_function makes the id "<app_id>-<fn_id>"; the local part is in _opts.local_id.
    app_ids = set()
    for fn in functions:
        local = fn._opts.local_id
        app_ids.add(fn.id[: -len(local) - 1] if fn.id.endswith("-" + local) else fn.id)
    if len(app_ids) != 1:
        raise ValueError(f"The functions come from different apps {sorted(app_ids)}; "
                         "serve one app per lab.start, or pass app_id=.")
    return app_ids.pop()


def _check_ids(functions: list, app_id: str) -> None:
    for fn in functions:
        if not fn.id.startswith(app_id + "-"):
            raise ValueError(f"Function {fn.id!r} was made by a client with another app_id "
                             f"than {app_id!r}; use inngest.Inngest(app_id={app_id!r}).")
