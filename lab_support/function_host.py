"""The function host: FastAPI + ``inngest.fast_api.serve``, in a thread or a subprocess.

* ``thread`` (default): a ``ThreadedHost`` serves a ``SwappableApp``. Swapping the inner app
  changes the served code at once, without a restart, so "fix the bug, then rerun" keeps the
  engine's runs and the host's port.
* ``process``: ``python -m lab_support.process_host`` serves functions imported from a
  module, so ``kill()`` is a real crash (SIGKILL) in the middle of a step.

Both put ``host_faults.FaultInjector`` in front of the SDK: host-side chaos and Retry-After
for real dev servers, controlled over HTTP at ``faults_url`` (a no-op until rules are set).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import httpx

from .engine_process import terminate
from .host import HostError, ThreadedHost, free_port
from .host_faults import CONTROL_PATH, FaultInjector

SERVE_PATH = "/api/inngest"
PROCESS_READY_TIMEOUT_S = 20.0


def make_client(app_id: str, engine_url: str):
    import inngest

    quiet = logging.getLogger(f"lab.inngest.{app_id}")
    quiet.setLevel(logging.WARNING)
    return inngest.Inngest(app_id=app_id, is_production=False, api_base_url=engine_url,
                           event_api_base_url=engine_url, logger=quiet)


def build_app(client, functions: list):
    import fastapi
    import inngest.fast_api

    app = fastapi.FastAPI(title=f"lab host for {client.app_id}")
    inngest.fast_api.serve(app, client, functions, serve_path=SERVE_PATH)
    return app


class SwappableApp:
    """An ASGI app that forwards to whichever app was set last."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        await self.app(scope, receive, send)


def sync(serve_url: str, timeout: float = 15.0) -> dict:
    """Ask the SDK to register with its engine, the way a dev server does: a ``PUT`` on the
    serve URL. The SDK answers 200 with the engine's reply, even when the engine refused."""
    try:
        resp = httpx.put(serve_url, json={"url": serve_url},
                         headers={"X-Inngest-Server-Kind": "dev"}, timeout=timeout)
    except httpx.HTTPError as exc:
        raise HostError(f"Could not reach the function host at {serve_url} to sync: {exc}") from exc
    try:
        body = resp.json()
    except ValueError:
        body = {"error": resp.text[:300]}
    if resp.status_code >= 400 or not isinstance(body, dict) or body.get("error") \
            or body.get("ok") is False:
        raise HostError(f"Sync of {serve_url} failed (HTTP {resp.status_code}): {body}. "
                        "Check the function definitions (triggers, durations, CEL expressions).")
    return body


class ThreadHost:
    kind = "thread"

    def __init__(self, app, port: int | None = None, *, serve_path: str = SERVE_PATH,
                 lifespan: str = "off") -> None:
        self.swappable = SwappableApp(app)
        self.faults = FaultInjector(self.swappable)  # outside the swap: rules survive update()
        self.serve_path = serve_path
        self._server = ThreadedHost(self.faults, port=port, lifespan=lifespan)

    @property
    def base_url(self) -> str:
        return self._server.url

    @property
    def url(self) -> str:
        return self._server.url + self.serve_path

    @property
    def faults_url(self) -> str:
        return self._server.url + CONTROL_PATH

    def start(self, timeout: float = 5.0) -> "ThreadHost":
        self._server.start(timeout=timeout)
        return self

    def swap(self, app) -> None:
        self.swappable.app = app

    def alive(self) -> bool:
        return self._server.running

    def stop(self) -> None:
        self._server.stop()


def importable_module(functions: Iterable) -> str:
    """The one importable module that defines all ``functions`` (for the process host)."""
    modules = {getattr(fn._handler, "__module__", None) for fn in functions}
    if len(modules) != 1 or None in modules or "__main__" in modules:
        raise HostError(
            "host='process' runs your functions in a separate Python process, so they must "
            "live in an importable module, all in one (found: "
            f"{sorted(str(m) for m in modules)}). Put them in a .py file next to the notebook "
            "(e.g. with %%writefile worker.py) and `from worker import ...`, or use host='thread'.")
    return modules.pop()


def _can_listen(port: int) -> bool:
    """Like uvicorn, ignore TIME_WAIT leftovers of a killed host (SO_REUSEADDR); only a live
    listener makes the port unusable."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class ProcessHost:
    kind = "process"

    def __init__(self, module: str, fn_ids: list[str], app_id: str, engine_url: str,
                 log_path: Path, port: int | None = None) -> None:
        self.module, self.fn_ids, self.app_id = module, fn_ids, app_id
        self.log_path = log_path
        self.engine_url = engine_url
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        # lab.hours(...) in the child scales like the kernel's (set by lab.start).
        self.seconds_per_hour: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{SERVE_PATH}"

    @property
    def faults_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{CONTROL_PATH}"

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "lab_support.process_host", "--module", self.module,
               "--app-id", self.app_id, "--engine", self.engine_url, "--port", str(self.port)]
        for fn_id in self.fn_ids:
            cmd += ["--fn-id", fn_id]
        if self.seconds_per_hour is not None:
            cmd += ["--seconds-per-hour", str(self.seconds_per_hour)]
        return cmd

    def start(self, timeout: float = PROCESS_READY_TIMEOUT_S) -> "ProcessHost":
        if self.alive():
            return self
        if not _can_listen(self.port):
            raise HostError(f"Port {self.port} is already in use, so the process host cannot "
                            "start there. Stop what is using it, or start without a fixed port.")
        env = dict(os.environ)
        # The child must import the same modules the kernel can (notebook folder included).
        env["PYTHONPATH"] = os.pathsep.join([os.getcwd(), *[p for p in sys.path if p]])
        env["INNGEST_DEV"] = self.engine_url
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # Output goes to a file: a pipe nobody reads would stall a chatty host.
        with self.log_path.open("a", encoding="utf-8") as log:
            self.proc = subprocess.Popen(self.command(), env=env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                output = self.log_path.read_text(encoding="utf-8", errors="replace")
                raise HostError(f"The process host exited at start ({self.log_path}):\n"
                                f"{output[-2000:]}")
            try:
                if httpx.get(self.url, timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise HostError(f"The process host did not answer at {self.url} within {timeout:.0f} s.")

    def alive(self) -> bool:
        return bool(self.proc and self.proc.poll() is None)

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye, exactly like an OOM kill or a node loss."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def stop(self, timeout: float = 10.0) -> None:
        terminate(self.proc, timeout)
        self.proc = None
