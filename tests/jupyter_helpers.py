"""A real JupyterLab for browser tests: start it on a free port, open a notebook once its
kernel is connected, and run cells with retries (on a loaded 2-core machine the first
keystrokes or menu clicks can reach the page before the notebook is wired to its kernel)."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import httpx

from lab_support.engine_process import terminate
from lab_support.host import free_port

SERVER_START_TIMEOUT_S = 90


def wait_until(check, timeout: float, what: str, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@contextlib.contextmanager
def jupyterlab(root_dir: Path, log_path: Path, env: dict | None = None):
    """Yield (base_url, token) of a JupyterLab serving ``root_dir``; shut down its kernels
    politely (so each kernel's atexit stops what it started), then the server."""
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ if env is None else env)
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root_dir}", "--ServerApp.port_retries=0",
           # Offline: no news feed, update check or extension catalogue lookups.
           "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--LabApp.extension_manager=readonly"]
    if os.geteuid() == 0:  # CI runs as root; Jupyter refuses that unless told
        cmd.append("--allow-root")
    base = f"http://127.0.0.1:{port}"
    with log_path.open("w") as log:
        server = subprocess.Popen(cmd, cwd=root_dir, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True)

        def up() -> bool:
            if server.poll() is not None:
                raise AssertionError(f"jupyter lab exited:\n{log_path.read_text()[-3000:]}")
            try:
                return httpx.get(f"{base}/api/status", params={"token": token},
                                 timeout=2).status_code == 200
            except httpx.HTTPError:
                return False
        try:
            wait_until(up, SERVER_START_TIMEOUT_S, "jupyter lab to answer /api/status")
            yield base, token
        finally:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                for kernel in httpx.get(f"{base}/api/kernels", params={"token": token},
                                        timeout=5).json():
                    httpx.delete(f"{base}/api/kernels/{kernel['id']}", params={"token": token},
                                 timeout=30)
            terminate(server, 30)


def kernel_connected(base: str, token: str) -> bool:
    try:
        kernels = httpx.get(f"{base}/api/kernels", params={"token": token}, timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return False
    if not isinstance(kernels, list):   # an error body while the server is busy
        return False
    return any(isinstance(k, dict) and k.get("connections", 0) > 0
               and k.get("execution_state") == "idle" for k in kernels)


def open_notebook(page, base: str, token: str, name: str) -> None:
    """Open ``name`` and wait until its kernel is idle and connected."""
    page.goto(f"{base}/lab/tree/{name}?token={token}", timeout=120_000)
    page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=120_000)
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(
        timeout=120_000)
    wait_until(lambda: kernel_connected(base, token), 120,
               "the notebook's kernel to be connected and idle")


def with_retries(page, action, expected, *, attempts: int = 3, timeout_ms: int = 90_000,
                 shots: Path | None = None) -> None:
    """Do ``action`` until the ``expected`` locator shows (the cells must be safe to re-run)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(attempts):
        action()
        try:
            expected.wait_for(timeout=timeout_ms)
            return
        except PlaywrightTimeout:
            if shots is not None:
                page.screenshot(path=str(shots / f"attempt-{attempt}.png"))
    raise AssertionError(f"nothing showed after {attempts} tries"
                         + (f"; screenshots in {shots}" if shots else ""))


def run_all(page) -> None:
    page.click(".lm-MenuBar-itemLabel:text-is('Run')")
    page.click(".lm-Menu-itemLabel:text-is('Run All Cells')")


def first_cell_ran(page):
    """A locator that shows once any code cell has an execution count."""
    return page.locator(".jp-InputPrompt", has_text="[1]").first
