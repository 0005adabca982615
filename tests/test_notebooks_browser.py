"""The quick-win notebook opened in a real JupyterLab (headless Chromium): after Run All, its
predict widget renders and answers a click, and the run view shows as an image.

Needs Debian chromium and the embedded engine; skipped with the reason when either is absent.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
import pytest

from dashboard_helpers import browser_page, require_chromium
from jupyter_helpers import first_cell_ran, jupyterlab, open_notebook, run_all, with_retries

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "00_quick_win.ipynb"
RUN_ALL_TIMEOUT_MS = 240_000

pytestmark = [pytest.mark.browser, pytest.mark.notebook, pytest.mark.slow,
              pytest.mark.timeout(600)]


@pytest.fixture
def lab_server(tmp_path, engine):
    """A JupyterLab on 127.0.0.1 serving a scratch copy of the notebook (the repo's file is
    never autosaved with outputs); its kernels talk to the test's engine."""
    require_chromium()
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(NOTEBOOK, work / NOTEBOOK.name)
    env = dict(os.environ, LAB_ENGINE_URL=engine.url, MPLBACKEND="Agg",
               JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"))
    with jupyterlab(work, tmp_path / "jupyterlab.log", env) as (base, token):
        yield base, token, tmp_path


def test_quick_win_renders_predict_widget_and_run_view(lab_server):
    base, token, shots = lab_server
    with browser_page() as page:
        open_notebook(page, base, token, NOTEBOOK.name)
        with_retries(page, lambda: run_all(page), first_cell_ran(page), timeout_ms=60_000,
                     shots=shots)

        # The prediction before the first demo: a real ipywidgets view, not the HTML fallback.
        widget = page.locator(".jp-OutputArea-output .widget-radio-box").first
        widget.wait_for(timeout=RUN_ALL_TIMEOUT_MS)
        # The run view: lab.watch leaves a static PNG in the output.
        page.locator(".jp-OutputArea-output img").first.wait_for(timeout=RUN_ALL_TIMEOUT_MS)

        # Answer it like a learner: pick, reveal, read the explanation.
        page.locator(".widget-radio-box label:has-text('under 5 seconds')").first.click()
        page.locator(".widget-button:has-text('Reveal')").first.click()
        page.locator(".widget-output:has-text('you said')").first.wait_for(timeout=30_000)
        assert "virtual clock" in page.locator(".widget-output:has-text('you said')").first.inner_text()
        assert not page.js_errors, page.js_errors

        # Let the notebook finish so lab.stop() releases the host before the server goes.
        page.wait_for_function(
            "() => ![...document.querySelectorAll('.jp-InputPrompt')]"
            ".some(p => p.textContent.includes('*'))", timeout=RUN_ALL_TIMEOUT_MS)
