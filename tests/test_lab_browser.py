"""JupyterLab in headless chromium: run the smoke notebook's first cells and see the status
panel and a live widget. Skipped (with the reason) when chromium or Playwright is absent."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
import pytest

from jupyter_helpers import jupyterlab, open_notebook, with_retries

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
# Cells up to and including the prediction: markdown, parameters, imports, markdown,
# lab.start, markdown, lab.predict.
CELLS_TO_RUN = 7

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]


def require_browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is absent (install it with `make browser-deps`)")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")


@pytest.fixture
def jupyter_lab(tmp_path):
    """A JupyterLab server on a free port, serving a copy of the smoke notebook (so the
    repo's file is never autosaved with outputs)."""
    require_browser()
    shutil.copy(ROOT / "tests" / "smoke_lab.ipynb", tmp_path / "smoke_lab.ipynb")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "src"), str(ROOT / "tests"),
                                         env.get("PYTHONPATH", "")])
    with jupyterlab(tmp_path, tmp_path / "jupyter.log", env) as (base, token):
        yield base, token, tmp_path


def test_status_panel_and_prediction_widget_render(jupyter_lab):
    from playwright.sync_api import sync_playwright

    base, token, shots = jupyter_lab
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            open_notebook(page, base, token, "smoke_lab.ipynb")
            first = page.locator(".jp-NotebookPanel .jp-Cell").first
            # JupyterLab's sanitizer drops class attributes of HTML output: find it by text.
            status = page.locator(".jp-OutputArea-output").filter(has_text="lab ready").first

            def run_first_cells():
                # Safe to re-run: lab.start reuses its engine.
                first.click()
                for _ in range(CELLS_TO_RUN):
                    page.keyboard.press("Shift+Enter")
            with_retries(page, run_first_cells, status, shots=shots)
            assert "lab ready" in status.inner_text()
            assert "embedded" in status.inner_text()
            widget = page.locator(".jp-OutputArea-output .widget-vbox").filter(has_text="Predict").first
            widget.wait_for(timeout=60_000)
            assert widget.locator("button", has_text="Reveal").count() == 1
            assert widget.locator(".widget-radio-box input").count() == 2
        finally:
            browser.close()
