"""The workbook as a learner meets it, in a real JupyterLab in headless Debian Chromium:

* ``make lab`` (as root here: uid 0 gets ``--allow-root``) prints one block whose URL opens
  notebook 00, with the file browser at the repository root so ``exercises/`` is in view;
* a jupytext ``.md`` source opens as a notebook;
* an exercise task done wrong, then fixed and re-run from the setup cell, passes without a
  kernel restart.

The predict widget (collapsed source, locked after Reveal) and ``lab.watch`` of a retried run
are covered in tests/test_notebooks_browser.py. Skipped with the reason when chromium or
Playwright is absent.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import nbformat
import pytest

from dashboard_helpers import browser_page, require_chromium
from jupyter_helpers import jupyterlab, open_notebook, wait_until
from lab_support.host import free_port

ROOT = Path(__file__).resolve().parents[1]
BANNER_TIMEOUT_S = 600  # a first make lab may install the project
CELL_TIMEOUT_MS = 180_000

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(900)]


def quiet_jupyter_env(tmp: Path, **extra) -> dict:
    """Jupyter's per-user folders in ``tmp``; autosave off, so the repository's notebooks are
    never written while a test has them open."""
    settings = tmp / "settings" / "@jupyterlab" / "docmanager-extension"
    settings.mkdir(parents=True)
    (settings / "plugin.jupyterlab-settings").write_text(json.dumps({"autosave": False}))
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp / "config"),
               JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"),
               JUPYTERLAB_SETTINGS_DIR=str(tmp / "settings"),
               LAB_STATE_DIR=str(tmp / "state"), MPLBACKEND="Agg", **extra)
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    return env


def listing(page) -> list[str]:
    return [t.split("\n")[0].strip() for t in page.locator(".jp-DirListing-item").all_inner_texts()]


# -- make lab ----------------------------------------------------------------------------------
@pytest.fixture
def make_lab(tmp_path):
    require_chromium()
    port = free_port()
    env = quiet_jupyter_env(tmp_path, LAB_PORT=str(port), LAB_NO_BROWSER="1")
    proc = subprocess.Popen(["make", "-s", "lab"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + BANNER_TIMEOUT_S
        while time.monotonic() < deadline and proc.poll() is None:
            line = proc.stdout.readline()
            lines.append(line)
            if line.strip().startswith("stop"):
                break
        assert any(line.strip().startswith("open") for line in lines), "".join(lines)
        yield proc, lines, port, tmp_path
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
            try:
                proc.wait(90)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)


def test_make_lab_opens_notebook_00_with_the_repository_in_view(make_lab):
    proc, lines, port, tmp = make_lab
    # (A first `make lab` after pyproject.toml changed installs the project first: pip's
    # lines come before the block. The block itself is the launcher's whole output.)
    text = [line.rstrip() for line in lines if line.strip()]
    start = next(n for n, line in enumerate(text) if line.startswith("Production Worker Lab is"))
    block = text[start:]
    assert len(block) == 4, f"one short block, not a server log: {block}"
    assert not any(line.startswith("[I ") for line in text), "Jupyter's log goes to the file"
    url = re.search(r"open\s+(\S+)", block[1]).group(1)
    assert url.startswith(f"http://127.0.0.1:{port}/lab/tree/notebooks/00_quick_win.ipynb")
    assert "Ctrl-C" in block[3]
    log = Path(tmp / "state" / "jupyterlab.log")
    assert log.exists() and "Jupyter Server" in log.read_text(), "the server log went to .lab/"
    if os.geteuid() == 0:
        assert "Running as root is not recommended" not in log.read_text()
    token = url.split("token=")[1]
    bare = httpx.get(f"http://127.0.0.1:{port}/", params={"token": token}, timeout=30,
                     follow_redirects=False)
    assert bare.status_code in (301, 302)
    assert "/lab/tree/notebooks/00_quick_win.ipynb" in bare.headers["location"], \
        "a pasted server URL lands on notebook 00, not the Launcher"

    with browser_page() as page:
        page.set_viewport_size({"width": 1400, "height": 900})
        page.goto(url, timeout=120_000)
        page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=120_000)
        tab = page.locator(".lm-TabBar-tab.jp-mod-current .lm-TabBar-tabLabel").first
        assert tab.inner_text() == "00_quick_win.ipynb"
        wait_until(lambda: "exercises" in listing(page), 60, "exercises/ in the file browser")
        assert {"exercises", "notebooks", "solutions"} <= set(listing(page))
        page.screenshot(path=str(tmp / "make-lab.png"))
        # The course home and every source .md open as notebooks (jupytext's viewer).
        page.goto(url.replace("00_quick_win.ipynb", "04_idempotency.md"), timeout=120_000)
        page.locator(".lm-TabBar-tab.jp-mod-current", has_text="04_idempotency.md") \
            .wait_for(timeout=120_000)
        panel = page.locator(".jp-NotebookPanel:visible").first
        panel.locator(".jp-Cell", has_text="04 · Idempotency").first.wait_for(timeout=120_000)
        panel.locator(".jp-CodeCell").first.wait_for(timeout=60_000)  # cells, not Markdown text
        assert page.locator(".jp-FileEditor:visible").count() == 0
        page.screenshot(path=str(tmp / "md-as-notebook.png"))
        assert not page.js_errors, page.js_errors

    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: make stops too (it reports "Interrupt")
    proc.wait(90)
    assert "Stopping JupyterLab" in proc.stdout.read()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/api/status", timeout=5)


# -- an exercise fixed after a wrong attempt -----------------------------------------------------
WRONG_TASK_1 = '''import uuid


def send_welcome_email(email: str) -> dict:
    executions["send-email"] += 1
    return mailer.send(email, "welcome", idempotency_key=str(uuid.uuid4()))  # new on every attempt


@client.create_function(fn_id="send-welcome", trigger=inngest.TriggerEvent(event="user/signed.up"))
def send_welcome(ctx: inngest.ContextSync) -> str:
    return ctx.step.run("send-email", send_welcome_email, ctx.event.data["email"])["id"]


lab.start([send_welcome], app_id="idempotency-exercise", engine=engine_url or "auto", memory=True)'''

FIXED_TASK_1 = '''def send_welcome_email(email: str, key: str) -> dict:
    executions["send-email"] += 1
    return mailer.send(email, "welcome", idempotency_key=key)


@client.create_function(fn_id="send-welcome", trigger=inngest.TriggerEvent(event="user/signed.up"))
def send_welcome(ctx: inngest.ContextSync) -> str:
    return ctx.step.run("send-email", send_welcome_email, ctx.event.data["email"],
                        f"welcome-{ctx.event.id}")["id"]


lab.start([send_welcome], app_id="idempotency-exercise", engine=engine_url or "auto", memory=True)'''

TASK_2 = '''    return lab.send("user/signed.up", {"email": email}, id=f"signup-{form_token}")'''
PLACEHOLDER = "    # YOUR CODE HERE\n    raise NotImplementedError"


def learner_attempt(tmp: Path) -> tuple[Path, dict[str, int]]:
    """Exercise 04 as a learner leaves it: Task 1 wrong (a random key), Task 2 right."""
    nb = nbformat.read(ROOT / "exercises" / "04_idempotency_exercise.ipynb", as_version=4)
    index = {}
    for n, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if "lab_support import lab" in cell.source:
            index["setup"] = n
        elif 'lab.start([send_welcome]' in cell.source:
            cell.source, index["task1"] = WRONG_TASK_1, n
        elif "def sign_up(" in cell.source:
            assert PLACEHOLDER in cell.source, cell.source
            cell.source = cell.source.replace(PLACEHOLDER, TASK_2)
        elif "Omar got one email" in cell.source:
            index["task3-check"] = n
        elif cell.source.strip() == "lab.stop()":
            index["stop"] = n
    work = tmp / "work"
    work.mkdir()
    path = work / "04_idempotency_exercise.ipynb"
    nbformat.write(nb, str(path))
    return path, index


def run_menu(page, item: str) -> None:
    page.click(".lm-MenuBar-itemLabel:text-is('Run')")
    page.click(f".lm-Menu-itemLabel:text-is('{item}')")


def select_cell(page, n: int) -> None:
    cell = page.locator(".jp-Notebook .jp-Cell").nth(n)
    cell.scroll_into_view_if_needed()
    cell.locator(".jp-InputPrompt").first.click()
    page.keyboard.press("Escape")  # command mode, the cell selected


def prompt_number(page, n: int) -> int:
    text = page.locator(".jp-Notebook .jp-Cell").nth(n).locator(".jp-InputPrompt").first.inner_text()
    digits = re.sub(r"\D", "", text)
    return int(digits) if digits else 0


def test_an_exercise_task_is_fixed_after_a_wrong_attempt_without_a_restart(tmp_path, fresh_engine):
    require_chromium()
    path, cells = learner_attempt(tmp_path)
    env = quiet_jupyter_env(tmp_path, LAB_ENGINE_URL=fresh_engine.url)
    check = None
    with jupyterlab(path.parent, tmp_path / "jupyterlab.log", env) as (base, token):
        with browser_page() as page:
            page.set_viewport_size({"width": 1400, "height": 1000})
            page.set_default_timeout(CELL_TIMEOUT_MS)
            open_notebook(page, base, token, path.name)
            kernels = httpx.get(f"{base}/api/kernels", params={"token": token}).json()
            # The learner runs the tasks (everything but the final lab.stop()).
            select_cell(page, cells["stop"])
            run_menu(page, "Run All Above Selected Cell")
            check = page.locator(".jp-Notebook .jp-Cell").nth(cells["task3-check"])
            check.locator(".jp-OutputArea-output", has_text="failed").wait_for()
            assert "Omar got one email" in check.inner_text()
            page.screenshot(path=str(tmp_path / "wrong-attempt.png"))
            first_count = prompt_number(page, cells["setup"])

            # Fix Task 1 in its cell, then start over from the setup cell.
            editor = page.locator(".jp-Notebook .jp-Cell").nth(cells["task1"]).locator(".cm-content")
            editor.scroll_into_view_if_needed()
            editor.click()
            page.keyboard.press("ControlOrMeta+a")
            page.keyboard.insert_text(FIXED_TASK_1)
            page.keyboard.press("Escape")
            select_cell(page, cells["setup"])
            run_menu(page, "Run Selected Cell and All Below")
            check.locator(".jp-OutputArea-output", has_text="passed").wait_for()
            page.wait_for_function(
                "() => ![...document.querySelectorAll('.jp-InputPrompt')]"
                ".some(p => p.textContent.includes('*'))", timeout=CELL_TIMEOUT_MS)
            page.screenshot(path=str(tmp_path / "fixed.png"))
            outputs = page.locator(".jp-Notebook").inner_text()
            assert "failed" not in check.inner_text()
            assert outputs.count("passed") >= 2 and "lab.reset: the engine forgot" in outputs
            assert prompt_number(page, cells["setup"]) > first_count, \
                "the same kernel ran on: its execution count did not start again at 1"
            after = httpx.get(f"{base}/api/kernels", params={"token": token}).json()
            assert [k["id"] for k in after] == [k["id"] for k in kernels]
            assert not page.js_errors, page.js_errors
    assert check is not None
    shutil.rmtree(path.parent / ".ipynb_checkpoints", ignore_errors=True)
