"""``make lab``: start JupyterLab the way a learner needs it, and say only what matters.

* serves the **repository root**, so ``notebooks/``, ``exercises/`` and ``solutions/`` are all
  in the file browser, and opens on ``notebooks/00_quick_win.ipynb`` (the printed URL and the
  bare server URL both land there, not on the Launcher);
* works as root (Docker, devcontainers, root WSL: ``--allow-root`` only when uid is 0) and as
  a user; binds 127.0.0.1 (``LAB_IP=0.0.0.0 make lab`` inside a container whose port you
  publish; ``LAB_PORT`` picks the port, default 8888 or the next free one);
* makes JupyterLab open a jupytext ``.md`` source as a notebook (a default-viewer setting
  in this environment's ``share/jupyter/lab/settings/overrides.json``, next to "no news, no
  update checks" for offline use; ``make setup`` writes it too);
* sends the server's log to ``<state dir>/jupyterlab.log`` and prints one short block:
  the URL, where to start, how to stop (Ctrl-C). A browser opens when there is a display
  (``LAB_NO_BROWSER=1`` to skip).

``python -m lab_support.launch --settings-only`` writes the viewer setting and exits.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
import webbrowser
from pathlib import Path

import httpx

from .engines import lab_state_dir, project_root
from .host import free_port, port_is_free

START = "notebooks/00_quick_win.ipynb"
# Open the first notebook with the file browser at the repository root (not in notebooks/),
# so exercises/ and solutions/ are in view.
START_PATH = f"/lab/tree/{START}?file-browser-path=/"
HOME = "notebooks/README.md"
DEFAULT_PORT = 8888
READY_TIMEOUT_S = 180
STOP_TIMEOUT_S = 30
# JupyterLab opens these Markdown flavours with jupytext's notebook view, and (offline
# first) never asks to fetch news or check for updates.
VIEWER_SETTINGS = {"@jupyterlab/docmanager-extension:plugin": {
    "defaultViewers": {"markdown": "Jupytext Notebook", "myst": "Jupytext Notebook"}}}
QUIET_SETTINGS = {"@jupyterlab/apputils-extension:notification": {
    "fetchNews": "false", "checkForUpdates": False}}


def settings_file(prefix: Path | None = None) -> Path:
    return Path(prefix or sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"


def write_lab_settings(prefix: Path | None = None) -> Path:
    """Merge the default-viewer setting into the environment's JupyterLab overrides."""
    path = settings_file(prefix)
    current: dict = {}
    if path.exists():
        try:
            current = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            current = {}  # a broken overrides file would break JupyterLab's settings anyway
    for plugin, values in VIEWER_SETTINGS.items():
        merged = dict(current.get(plugin) or {})
        viewers = dict(merged.get("defaultViewers") or {})
        viewers.update(values["defaultViewers"])
        merged["defaultViewers"] = viewers
        current[plugin] = merged
    for plugin, values in QUIET_SETTINGS.items():
        current[plugin] = {**(current.get(plugin) or {}), **values}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(current, indent=2) + "\n", encoding="utf-8")
    return path


def jupyter_command(root: Path, *, port: int, ip: str = "127.0.0.1", uid: int | None = None,
                    extra: list[str] | None = None) -> list[str]:
    uid = os.geteuid() if uid is None else uid
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--ServerApp.ip={ip}",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
           f"--ServerApp.root_dir={root}", f"--LabApp.default_url={START_PATH}",
           # Offline: no news feed and no update check.
           "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if uid == 0:  # Docker, devcontainers, root WSL: Jupyter refuses root unless told
        cmd.append("--allow-root")
    return cmd + list(extra or [])


def banner(url: str, log: Path, root: Path) -> str:
    try:
        shown_log = log.relative_to(root)
    except ValueError:
        shown_log = log
    return "\n".join([
        "",
        "Production Worker Lab is running in JupyterLab.",
        f"  open   {url}",
        f"  start  {START} (the course home is {HOME})",
        f"  stop   press Ctrl-C here (server log: {shown_log})",
        ""])


def has_display() -> bool:
    if os.environ.get("LAB_NO_BROWSER"):
        return False
    return sys.platform in ("darwin", "win32") or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def wait_ready(proc: subprocess.Popen, base: str, token: str, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-25:]
            raise SystemExit("JupyterLab exited before it was ready. The end of its log "
                             f"({log}):\n" + "\n".join(tail))
        try:
            if httpx.get(f"{base}/api/status", params={"token": token}, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"JupyterLab did not answer within {READY_TIMEOUT_S} s; see {log}.")


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM lets Jupyter shut its kernels down (each kernel's lab stops its engine)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(STOP_TIMEOUT_S)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab_support.launch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings-only", action="store_true",
                        help="write JupyterLab's default-viewer setting and exit")
    args, extra = parser.parse_known_args(argv)
    settings = write_lab_settings()
    if args.settings_only:
        print(f"JupyterLab opens jupytext Markdown as notebooks ({settings})")
        return 0
    root = project_root(Path(__file__).resolve().parent)
    state = lab_state_dir(root)
    state.mkdir(parents=True, exist_ok=True)
    log = state / "jupyterlab.log"
    ip = os.environ.get("LAB_IP", "127.0.0.1")
    wanted = int(os.environ.get("LAB_PORT") or 0)
    port = wanted or (DEFAULT_PORT if port_is_free(DEFAULT_PORT) else free_port())
    token = os.environ.get("JUPYTER_TOKEN") or secrets.token_hex(24)
    extra += shlex.split(os.environ.get("LAB_ARGS", ""))
    cmd = jupyter_command(root, port=port, ip=ip, extra=extra)
    env = dict(os.environ, JUPYTER_TOKEN=token)  # not on the command line, where ps shows it
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, base, token, log)
        url = f"{base}{START_PATH}&token={token}"
        print(banner(url, log, root), flush=True)
        if has_display():
            webbrowser.open(url)
        while proc.poll() is None:
            time.sleep(0.5)
        print(f"JupyterLab stopped (exit {proc.returncode}); see {log}.")
        return proc.returncode or 0
    except KeyboardInterrupt:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        print("\nStopping JupyterLab (its kernels stop their engines)...", flush=True)
        return 0
    finally:
        stop(proc)


def _interrupt(*_) -> None:
    """SIGTERM (docker stop, make passing a signal on) stops the server like Ctrl-C; a second
    signal while stopping is ignored, so the shutdown (bounded by timeouts) completes."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    sys.exit(main())
