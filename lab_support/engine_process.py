"""Start and stop the embedded engine (``python -m lab_support.devserver``) as a subprocess.

Used by ``lab.start``, the grader and the tests. The engine prints one ready line; we wait
for it with a timeout and surface the engine's own output when it does not come.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import deque

import httpx

from .host import free_port, port_is_free

READY_TIMEOUT_S = 20.0


def terminate(proc: subprocess.Popen | None, timeout: float = 10.0) -> None:
    """Stop a child process: SIGTERM, then SIGKILL if it has not exited within ``timeout``."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


class EngineError(RuntimeError):
    """The embedded engine could not start; the message carries its output."""


class EngineProcess:
    def __init__(self, *, port: int | None = None, host: str = "127.0.0.1",
                 state_dir: str | None = None, memory: bool = False,
                 clock: str = "virtual", sdk_urls: tuple[str, ...] = (),
                 extra_args: tuple[str, ...] = (), env: dict | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.state_dir = state_dir
        self.memory = memory
        self.clock = clock
        self.sdk_urls = sdk_urls
        self.extra_args = extra_args
        self.env = env
        self.proc: subprocess.Popen | None = None
        self._output: deque[str] = deque(maxlen=200)
        self._reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "lab_support.devserver", "--host", self.host,
               "--port", str(self.port), "--clock", self.clock]
        if self.memory:
            cmd.append("--memory")
        elif self.state_dir:
            cmd += ["--state-dir", self.state_dir]
        for url in self.sdk_urls:
            cmd += ["-u", url]
        return cmd + list(self.extra_args)

    def start(self, timeout: float = READY_TIMEOUT_S) -> "EngineProcess":
        if self.proc and self.proc.poll() is None:
            return self
        if not port_is_free(self.port, self.host):
            raise EngineError(
                f"Port {self.port} is already in use; another engine or dev server may be "
                f"running there. Use it with INNGEST_DEV={self.url}, stop it, or pick "
                "another port.")
        env = dict(os.environ if self.env is None else self.env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        self.proc = subprocess.Popen(
            self.command(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, text=True, env=env)
        ready = threading.Event()
        self._reader = threading.Thread(target=self._pump, args=(ready,), daemon=True,
                                        name=f"lab-engine-log-{self.port}")
        self._reader.start()
        if not ready.wait(timeout):
            output = self.output()
            self.stop()
            raise EngineError(f"The embedded engine did not report ready within "
                              f"{timeout:.0f} s. Its output:\n{output}")
        if self.proc.poll() is not None:
            raise EngineError(f"The embedded engine exited (code {self.proc.returncode}):\n"
                              f"{self.output()}")
        return self

    def _pump(self, ready: threading.Event) -> None:
        assert self.proc and self.proc.stdout
        for line in self.proc.stdout:
            self._output.append(line.rstrip("\n"))
            if "engine ready at" in line:
                ready.set()
        ready.set()  # process ended: let start() report it instead of waiting

    def output(self) -> str:
        return "\n".join(self._output)

    def alive(self) -> bool:
        return bool(self.proc and self.proc.poll() is None)

    def wait_healthy(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/health", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise EngineError(f"The engine at {self.url} did not answer /health in {timeout} s")

    def stop(self, timeout: float = 10.0) -> None:
        proc = self.proc
        if proc is None:
            return
        terminate(proc, timeout)
        if proc.stdout:
            proc.stdout.close()
        if self._reader:
            self._reader.join(2)
        self.proc = None

    def kill(self) -> None:
        """Hard-kill (no shutdown), for crash/restart tests."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.stop()

    def __enter__(self) -> "EngineProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
