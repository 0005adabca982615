"""Which engine does ``lab.start`` talk to, and how is it started?

The rule (``engine="auto"``), in order:

1. ``INNGEST_DEV`` holds a URL (or ``1``/``true``, meaning http://127.0.0.1:8288) → use the
   server answering there. If nothing answers we fail fast: the learner asked for that server.
2. an ``inngest`` binary is on ``PATH`` → start ``inngest dev --no-discovery -u <host url>``.
3. otherwise → the embedded engine as a subprocess, state in ``<project root>/.lab/engine``.

``engine`` may also be ``"embedded"``, ``"real"`` (1 or 2 only) or a URL.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from .engine_process import EngineError, EngineProcess, terminate
from .host import free_port, port_is_free

DEFAULT_DEV_URL = "http://127.0.0.1:8288"
DEFAULT_PORT = 8288
PROBE_TIMEOUT_S = 1.5
REAL_READY_TIMEOUT_S = 30.0


class EngineUnavailable(RuntimeError):
    """No engine could be reached or started; the message says what to do."""


@dataclass(frozen=True)
class EngineChoice:
    """What ``pick_engine`` decided. ``mode`` is ``url`` (use a running server),
    ``binary`` (start ``inngest dev``) or ``embedded`` (start our engine)."""

    mode: str
    reason: str
    url: str | None = None
    binary: str | None = None


def dev_url_from_env(value: str | None) -> str | None:
    """``INNGEST_DEV`` is a flag or a URL (the SDK reads it the same way)."""
    if not value:
        return None
    text = value.strip()
    if text.lower() in ("1", "true"):
        return DEFAULT_DEV_URL
    if text.lower() in ("0", "false"):
        return None
    if not text.startswith(("http://", "https://")):
        raise EngineUnavailable(
            f"INNGEST_DEV={value!r} is neither a URL nor 1/true/0/false. "
            "Set it to the dev server's URL, e.g. http://127.0.0.1:8288, or unset it.")
    return text.rstrip("/")


def probe(url: str, timeout: float = PROBE_TIMEOUT_S) -> dict | None:
    """``GET /dev`` on a server; its JSON when it answers, else None."""
    try:
        resp = httpx.get(f"{url.rstrip('/')}/dev", params={"_": time.time_ns()},
                         timeout=timeout)
    except httpx.HTTPError:
        return None
    if resp.status_code != 200:
        return None
    try:
        body = resp.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def pick_engine(engine: str = "auto", *, env: Mapping[str, str] | None = None,
                which: Callable[[str], str | None] = shutil.which,
                probe_fn: Callable[[str], dict | None] = probe) -> EngineChoice:
    env = os.environ if env is None else env
    if engine not in ("auto", "embedded", "real") and not engine.startswith(("http://", "https://")):
        raise ValueError(f"engine must be 'auto', 'embedded', 'real' or a URL, not {engine!r}")
    if engine.startswith(("http://", "https://")):
        url = engine.rstrip("/")
        if probe_fn(url) is None:
            raise EngineUnavailable(
                f"No Inngest dev server answers at {url} (GET /dev failed). Start it, fix the "
                "URL, or call lab.start(..., engine='embedded') to use the built-in engine.")
        return EngineChoice("url", f"engine URL given: {url}", url=url)
    assigned = env.get("LAB_ENGINE_URL")
    if assigned and engine in ("auto", "embedded"):
        # An embedded engine already started for this kernel (the grader gives each
        # submission its own): attach to it instead of starting another.
        url = assigned.rstrip("/")
        if probe_fn(url) is None:
            raise EngineUnavailable(
                f"LAB_ENGINE_URL points at {url}, but no engine answers there. Unset it to "
                "let lab.start run its own engine.")
        return EngineChoice("url", f"LAB_ENGINE_URL={url} (an engine started for this kernel)",
                            url=url)
    if engine == "embedded":
        return EngineChoice("embedded", "engine='embedded' requested")

    url = dev_url_from_env(env.get("INNGEST_DEV"))
    if url is not None:
        if probe_fn(url) is None:
            raise EngineUnavailable(
                f"INNGEST_DEV points at {url}, but no dev server answers there. Start it "
                "(`inngest dev`), fix INNGEST_DEV, or unset it to use the built-in engine.")
        return EngineChoice("url", f"INNGEST_DEV={url} answers", url=url)
    binary = which("inngest")
    if binary:
        return EngineChoice("binary", f"`inngest` found at {binary}", binary=binary)
    if engine == "real":
        raise EngineUnavailable(
            "engine='real' needs a running dev server (set INNGEST_DEV to its URL) or the "
            "`inngest` CLI on PATH (npm i -g inngest-cli). Use engine='auto' to fall back "
            "to the built-in engine.")
    return EngineChoice("embedded", "no INNGEST_DEV and no `inngest` binary: built-in engine")


def project_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: cwd) holding pyproject.toml;
    ``start`` itself when there is none (a notebook opened outside the repo)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file():
            return folder
    return here


STATE_DIR_ENV = "LAB_STATE_DIR"


def lab_state_dir(start: Path | None = None) -> Path:
    """Where the learner's state lives: ``<project root>/.lab``. The tests set
    ``LAB_STATE_DIR`` to a folder of their own (the grader's sandbox has its own project
    copy), so they never write into the learner's predictions, progress or engine."""
    override = os.environ.get(STATE_DIR_ENV, "").strip()
    if override:
        return Path(override).expanduser().resolve()
    return project_root(start) / ".lab"


def preferred_port(port: int | None) -> int:
    """The dev server's usual port when free (so SDK defaults just work), else any free one."""
    if port:
        return port
    return DEFAULT_PORT if port_is_free(DEFAULT_PORT) else free_port()


def start_embedded(state_dir: Path, port: int | None = None,
                   memory: bool = False) -> EngineProcess:
    state_dir.mkdir(parents=True, exist_ok=True)

    def make(chosen: int) -> EngineProcess:
        return EngineProcess(port=chosen, state_dir=None if memory else str(state_dir / "engine"),
                             memory=memory)

    try:
        proc = make(preferred_port(port)).start()
    except EngineError:
        if port:
            raise
        # Another process took 8288 between our check and the engine's bind: any port will do.
        proc = make(free_port()).start()
    if not memory:
        write_engine_record(state_dir, proc.url, proc.proc.pid)
    return proc


# -- one engine per state folder -------------------------------------------------------------
# Two engines writing one .lab/engine would corrupt it. The engine a kernel starts is noted
# in .lab/engine.json; a later start (another kernel, or this one after a crash) reuses it.
ENGINE_RECORD = "engine.json"


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_engine_record(state_dir: Path, url: str, engine_pid: int) -> None:
    record = {"url": url, "engine_pid": engine_pid, "owner_pid": os.getpid()}
    (state_dir / ENGINE_RECORD).write_text(json.dumps(record), encoding="utf-8")


def running_engine(state_dir: Path) -> dict | None:
    """The record of an embedded engine already serving ``state_dir``, if it still answers."""
    path = state_dir / ENGINE_RECORD
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not _pid_alive(record.get("engine_pid")):
        return None
    info = probe(record.get("url", ""))
    return record if info and info.get("engine") == "embedded" else None


class AdoptedEngine:
    """An engine found running for our state folder. If the kernel that started it is gone,
    this kernel becomes its owner and stops it on ``lab.stop()``; otherwise it is left alone."""

    def __init__(self, state_dir: Path, record: dict) -> None:
        self.url = record["url"]
        self.pid = record["engine_pid"]
        self.owned = not _pid_alive(record.get("owner_pid"))
        if self.owned:
            write_engine_record(state_dir, self.url, self.pid)

    def alive(self) -> bool:
        return _pid_alive(self.pid)

    def stop(self, timeout: float = 10.0) -> None:
        if not self.owned or not self.alive():
            return
        os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)


class RealDevProcess:
    """``inngest dev`` as a subprocess (only when the CLI is installed)."""

    def __init__(self, binary: str, sdk_url: str, port: int | None = None) -> None:
        self.binary = binary
        self.sdk_url = sdk_url
        self.port = preferred_port(port)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [self.binary, "dev", "--no-discovery", "-u", self.sdk_url,
                "--port", str(self.port)]

    def alive(self) -> bool:
        return bool(self.proc and self.proc.poll() is None)

    def start(self, timeout: float = REAL_READY_TIMEOUT_S) -> "RealDevProcess":
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise EngineUnavailable(
                    f"`{' '.join(self.command())}` exited with code {self.proc.returncode}. "
                    "Run it in a terminal to see why, or use engine='embedded'.")
            if probe(self.url, timeout=0.5) is not None:
                return self
            time.sleep(0.2)
        self.stop()
        raise EngineUnavailable(f"`inngest dev` did not answer at {self.url} within "
                                f"{timeout:.0f} s. Use engine='embedded' to continue offline.")

    def stop(self, timeout: float = 10.0) -> None:
        terminate(self.proc, timeout)
        self.proc = None
