"""The learner's own Worker package for the Decision notebooks (Part 4): ``workspace/my_worker``.

The notebooks write the package with ``%%writefile {ws}/my_worker/<file>.py`` cells (``ws`` is a
``Workspace``; it formats as the workspace folder), so every file stays editable in JupyterLab,
and the notebook cell stays its source: re-running the cell writes it again. The package imports
only the Worker's internals (``chat_agent.agents``, ``customer_data_mcp``), never the reference
envelope (``chat_agent.tasks``).

Where the workspace is (first match):

1. ``$LAB_WORKSPACE`` (tests give each notebook its own);
2. ``workspace/`` beside the notebook when it is there: a graded submission folder carries it;
3. ``workspace/`` at the project root (the folder with ``pyproject.toml``), when it can be
   written: the usual place in a checkout, the same for every notebook;
4. ``workspace/`` beside the notebook (a grader's sandbox, where the project is read-only).

Serving. ``ws.serve(["email_tasks"], engine=...)`` imports the package once in the kernel, so a
mistake (or an unfinished ``raise NotImplementedError``) stops the cell with its own traceback,
then hands ``lab.start(app=...)`` an app that imports the package *again* when the host starts:
by then the lab has chosen its engine and set ``INNGEST_DEV``, which ``inngest.Inngest(...)``
reads when your ``inngest_client.py`` runs. It serves the parts named (each a module with a
``functions`` list and, optionally, a FastAPI ``router``) through your ``serve.create_app``, and
starts the Worker's database over from its seed data (on the engine's clock) unless you
pointed ``DATABASE_URL`` at a database of your own. ``ws.update()`` re-imports after an edit
and swaps the served app in place (a redeploy); the data stay.

Checkpoints. Each notebook runs on its own (the grader runs it alone), so a Decision that builds
on an earlier one writes the course's version of that earlier part first:
``ws.checkpoint("d3")``. The files live in ``lab_support/workspace_files/`` and equal the
solution cells of that Decision (a test keeps them equal).
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import os
import shutil
import sys
import threading
import time
from pathlib import Path

from starlette.datastructures import State

from .engines import project_root

WORKSPACE_ENV = "LAB_WORKSPACE"
PACKAGE = "my_worker"
FILES_DIR = Path(__file__).resolve().parent / "workspace_files"
CHECKPOINTS = {
    "scaffold": "the package and its function host (serve.py)",
    "d3": "Decision 3: the client, the agent step and handle_customer_email",
}


FINISHED = ("COMPLETED", "FAILED", "CANCELLED")


class WorkspaceError(RuntimeError):
    """The workspace cannot be used as asked; the message says what to do."""


def locate(start: Path | None = None) -> Path:
    """The workspace folder (see the module docstring for the order)."""
    if os.environ.get(WORKSPACE_ENV, "").strip():
        return Path(os.environ[WORKSPACE_ENV]).expanduser().resolve()
    here = (start or Path.cwd()).resolve()
    beside = here / "workspace"
    if beside.is_dir():
        return beside
    at_root = project_root(here) / "workspace"
    try:
        at_root.mkdir(exist_ok=True)
        probe = at_root / ".write-test"
        probe.write_text("", encoding="utf-8")
        probe.unlink()
        return at_root
    except OSError:
        return beside


class Workspace:
    """The folder that holds your package, on ``sys.path`` so ``import my_worker`` works."""

    def __init__(self, package: str = PACKAGE, root: str | Path | None = None) -> None:
        if not package.isidentifier():
            raise WorkspaceError(f"{package!r} is not a Python package name")
        self.package = package
        self.root = Path(root).resolve() if root else locate()
        self.package_dir.mkdir(parents=True, exist_ok=True)
        if str(self.root) not in sys.path:
            sys.path.insert(0, str(self.root))
        self.parts: list[str] = []

    # -------------------------------------------------------------- files
    def __fspath__(self) -> str:
        return str(self.root)

    def __str__(self) -> str:
        return str(self.root)

    def __repr__(self) -> str:
        return f"Workspace({self.package!r}) at {self.root}"

    @property
    def package_dir(self) -> Path:
        return self.root / self.package

    def path(self, name: str) -> Path:
        """A module of the package (``"email_tasks.py"``), else a file of the workspace
        (``"AGENTS.md"``)."""
        return self.package_dir / name if name.endswith(".py") else self.root / name

    def show(self, name: str) -> str:
        """Print one file of the package, as it is on disk now."""
        text = self.path(name).read_text(encoding="utf-8")
        print(f"# {self.path(name).relative_to(self.root.parent)}\n{text}")
        return text

    def files(self) -> list[str]:
        """The package's files, relative to the workspace."""
        found = sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*")
                       if p.is_file() and "__pycache__" not in p.parts)
        print("\n".join(found) if found else "(empty)")
        return found

    def checkpoint(self, name: str, only: list[str] | None = None,
                   keep_yours: bool = False) -> list[str]:
        """Write the course's version of an earlier part (``"d3"``, ...) into the package;
        ``only``: just these files of it (``["inngest_client.py"]``). ``keep_yours``: leave a
        file you already wrote in place, unless it is still an unfinished exercise
        (``raise NotImplementedError``). Returns the files written."""
        if name not in CHECKPOINTS:
            raise WorkspaceError(f"no checkpoint {name!r}; there are {sorted(CHECKPOINTS)}")
        written, kept = [], []
        for source in sorted((FILES_DIR / name).glob("*.py")):
            if only is not None and source.name not in only:
                continue
            target = self.package_dir / source.name
            if keep_yours and target.exists() and "NotImplementedError" not in \
                    target.read_text(encoding="utf-8"):
                kept.append(source.name)
                continue
            shutil.copyfile(source, target)
            written.append(source.name)
        if name != "scaffold":
            parts = [f"wrote {', '.join(written)}" if written else "",
                     f"kept yours: {', '.join(kept)}" if kept else ""]
            print(f"checkpoint {name} ({CHECKPOINTS[name]}): "
                  + "; ".join(p for p in parts if p))
        return written

    # -------------------------------------------------------------- importing
    def forget(self) -> None:
        """Drop the package from ``sys.modules`` so the next import reads the files again."""
        for module in [m for m in sys.modules if m == self.package
                       or m.startswith(self.package + ".")]:
            del sys.modules[module]
        importlib.invalidate_caches()

    def load(self, name: str):
        """Import ``my_worker.<name>`` fresh from disk (errors surface here, in the cell)."""
        self.forget()
        return importlib.import_module(f"{self.package}.{name}")

    def build_app(self, parts: list[str] | None = None):
        """Your ``serve.create_app(parts)``, imported fresh."""
        parts = list(self.parts if parts is None else parts)
        self.forget()
        serve = importlib.import_module(f"{self.package}.serve")
        return serve.create_app(parts)

    # -------------------------------------------------------------- serving
    def serve(self, parts: list[str], *, engine: str = "auto", fresh_data: bool = True,
              quiet: bool = True):
        """Serve your package's ``parts`` under the lab (``lab.start(app=...)``) and, unless
        ``fresh_data=False``, start the Worker's database over. Returns ``lab``."""
        from . import lab

        quiet_worker_logs()
        self.checkpoint("scaffold")
        self.parts = list(parts)
        self.build_app()  # in the kernel first: your mistakes show here, with a traceback
        lab.start(app=DeferredApp(self), engine=engine, memory=True, quiet=quiet)
        if fresh_data:
            reset_worker_data()
        functions = ", ".join(f.id for f in lab.functions) or "none"
        print(f"serving {self.package} ({', '.join(parts) or 'no parts'}) at {lab.host_url}; "
              f"functions: {functions}")
        return lab

    def update(self, parts: list[str] | None = None):
        """Re-import the package after an edit and serve the new code in place (a redeploy)."""
        from . import lab

        if parts is not None:
            self.parts = list(parts)
        self.build_app()
        lab.update(app=DeferredApp(self))
        print(f"redeployed {self.package} ({', '.join(self.parts)}); functions: "
              + (", ".join(f.id for f in lab.functions) or "none"))
        return lab

    def lint(self, *names: str) -> list:
        """``chat_agent.lint_envelope`` on files of the package; prints and returns the findings."""
        from chat_agent.lint_envelope import check_tasks

        findings = []
        for name in names:
            findings += check_tasks(self.path(name))
        for finding in findings:
            print(str(finding).replace(str(self.root) + os.sep, ""))
        print(f"{len(findings)} problem(s) found" if findings else "envelope rules: all pass")
        return findings


def wait_for_step(run_id: str, step: str, timeout: float = 60.0) -> dict:
    """Wait until the run's trace shows ``step`` (e.g. a ``wait-for-decision`` that is open),
    so an outside event or a clock jump arrives after the run got there. Returns the run."""
    from . import lab

    deadline = time.monotonic() + timeout
    while True:
        run = lab.run(run_id)
        if step in set(lab.trace(run_id, outputs=False)["step"]):
            return run
        if run["status"] in FINISHED or time.monotonic() > deadline:
            raise TimeoutError(f"run {run_id} is {run['status']} and never reached step "
                               f"{step!r} within {timeout:g} s; look at lab.trace({run_id!r})")
        time.sleep(0.1)


def wait_for_runs(function, count: int, timeout: float = 120.0) -> list[dict]:
    """Wait until ``function`` has at least ``count`` runs and all of them finished (a cron
    tick or a fan-out starts runs you hold no id for). Returns them, oldest first."""
    from . import lab

    deadline = time.monotonic() + timeout
    while True:
        runs = list(lab.runs(function=function))
        if len(runs) >= count and all(r["status"] in FINISHED for r in runs):
            return sorted(runs, key=lambda r: r.get("queuedAt") or "")
        if time.monotonic() > deadline:
            states = sorted({r["status"] for r in runs})
            raise TimeoutError(f"{function}: {len(runs)} run(s) ({', '.join(states) or 'none'}) "
                               f"after {timeout:g} s, waiting for {count} finished")
        time.sleep(0.2)



def events_with(name: str, timeout: float = 10.0, *, at_least: int = 1, **data) -> list[dict]:
    """The ``name`` events whose data has these values (``request_id="esc-1"``), newest
    first; polls up to ``timeout`` s for ``at_least`` of them (a real dev server lists an
    event some milliseconds after it accepted it) and returns what came by then."""
    from . import lab

    deadline = time.monotonic() + timeout
    while True:
        found = [e for e in lab.events(name)
                 if all((e["data"] or {}).get(k) == v for k, v in data.items())]
        if len(found) >= at_least or time.monotonic() > deadline:
            return found
        time.sleep(0.2)

def next_utc(hour: int, minute: int = 0, after=None):
    """The first ``hour:minute`` UTC strictly after ``after`` (default: the engine's now)."""
    from . import lab

    now = after or lab.clock.now()
    at = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return at if at > now else at + dt.timedelta(days=1)


def start_clock_at(hour: int, engine: str = "auto"):
    """Start the engine with nothing scheduled and move its clock to the next ``hour``:00 UTC,
    so a story with a 09:00 cron reads the same whatever the time of day (on a real dev
    server: the lab's schedule cursor, ``lab.clock.move_cursor``). Serve your app
    afterwards (``ws.serve``, ``lab.start(app=...)``): the engine and its clock stay."""
    import inngest

    from . import lab

    client = inngest.Inngest(app_id="clock-start", is_production=False)

    @client.create_function(fn_id="clock-start", trigger=inngest.TriggerEvent(event="lab/none"))
    async def clock_start(ctx: inngest.Context) -> None:
        return None

    lab.start([clock_start], engine=engine, memory=True, quiet=True)
    lab.clock.move_cursor(next_utc(hour))  # a real server: the lab's cursor (nothing to fire)
    return lab


def quiet_worker_logs() -> None:
    """The MCP server's import configures root logging at INFO, so every HTTP request of the
    Worker would print a line into the notebook; keep warnings and errors only."""
    import customer_data_mcp.server  # noqa: F401 - configures logging when first imported

    logging.getLogger().setLevel(logging.WARNING)
    for name in ("httpx", "mcp", "mcp.server.lowlevel.server"):
        logging.getLogger(name).setLevel(logging.WARNING)


def reset_worker_data() -> dict | None:
    """Drop and re-seed the Worker's embedded database (never a ``DATABASE_URL`` of yours)."""
    quiet_worker_logs()
    if os.environ.get("DATABASE_URL", "").strip():
        print("DATABASE_URL is set: your database is left as it is (no reset).")
        return None
    from customer_data_mcp import migrate

    return migrate.reset()


def stop_worker_data() -> None:
    """Stop the embedded Postgres this kernel started (it would stop when the kernel exits; a
    grader or a test that ends the kernel at once would find it still running)."""
    from customer_data_mcp import db

    db.stop_embedded()


class DeferredApp:
    """An ASGI app that builds your Worker's app when it is first needed: at the host's
    startup (or, after ``lab.update``, at the first request), after the lab set ``INNGEST_DEV``
    for the engine it chose."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self._app = None
        self._lock = threading.Lock()

    @property
    def state(self) -> State:
        return self._app.state if self._app is not None else State()

    def _built(self):
        with self._lock:
            if self._app is None:
                self._app = self.workspace.build_app()
            return self._app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        await self._built()(scope, receive, send)

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self._built()
                except Exception as exc:  # noqa: BLE001 - reported to the lab's host start
                    await send({"type": "lifespan.startup.failed",
                                "message": f"{type(exc).__name__}: {exc}"})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
