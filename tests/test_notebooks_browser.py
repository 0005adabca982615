"""The quick-win notebook opened in a real JupyterLab (headless Chromium), after Run All:

* each predict cell's source (with its answer) is collapsed, the widget renders, answers a
  click, and locks after Reveal; shown again, it keeps the first answer;
* ``lab.watch`` of the failed run shows every attempt of the retried step on its own.

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
               LAB_STATE_DIR=str(tmp_path / "state"),  # this test's own predictions
               JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"))
    with jupyterlab(work, tmp_path / "jupyterlab.log", env) as (base, token):
        yield base, token, tmp_path


def test_quick_win_predictions_lock_and_watch_shows_each_attempt(lab_server):
    from playwright.sync_api import expect   # here: require_chromium skips when absent

    base, token, shots = lab_server
    with browser_page() as page:
        page.set_viewport_size({"width": 1400, "height": 1000})
        open_notebook(page, base, token, NOTEBOOK.name)
        with_retries(page, lambda: run_all(page), first_cell_ran(page), timeout_ms=60_000,
                     shots=shots)

        # The prediction before the first demo: a real ipywidgets view, not the HTML fallback,
        # and its cell's source (which holds the answer) is collapsed.
        widget = page.locator(".jp-OutputArea-output .widget-radio-box").first
        widget.wait_for(timeout=RUN_ALL_TIMEOUT_MS)
        cell = page.locator(".jp-CodeCell", has=page.locator(".widget-radio-box")).first
        cell.scroll_into_view_if_needed()  # off-screen cells are not rendered (no text)
        cell.locator(".jp-InputPlaceholder").wait_for(timeout=30_000)
        # Polled, on textContent: JupyterLab renders a cell's text only once it is on screen,
        # so inner_text right after the scroll can still be empty (a flake seen in CI).
        expect(cell).to_contain_text("real", timeout=30_000)
        text = cell.text_content() or ""
        assert "answer=" not in text and "explain=" not in text
        assert "*real*" not in text, "the question's Markdown is rendered"

        # The run view: lab.watch leaves a static PNG in the output.
        page.locator(".jp-OutputArea-output img").first.wait_for(timeout=RUN_ALL_TIMEOUT_MS)

        # Answer it like a learner: pick, reveal, read the explanation; then it is locked.
        cell.locator(".widget-radio-box label:has-text('about 15 minutes')").first.click()
        cell.locator(".widget-button:has-text('Reveal')").first.click()
        verdict = cell.locator(".widget-html:has-text('you said')").first
        verdict.wait_for(timeout=30_000)
        assert "not quite" in verdict.inner_text() and "virtual clock" in verdict.inner_text()
        assert cell.locator(".widget-radio-box input:not([disabled])").count() == 0
        assert cell.locator(".widget-button[disabled]", has_text="Revealed").count() == 1
        cell.screenshot(path=str(shots / "predict-locked.png"))

        # Let the notebook finish so lab.stop() releases the host before the server goes.
        page.wait_for_function(
            "() => ![...document.querySelectorAll('.jp-InputPrompt')]"
            ".some(p => p.textContent.includes('*'))", timeout=RUN_ALL_TIMEOUT_MS)

        # lab.watch(failed_run): every attempt of the failing step is its own segment.
        watch = page.locator(".jp-CodeCell", has_text="lab.watch(failed_run").first
        watch.scroll_into_view_if_needed()
        caption = watch.locator(".jp-OutputArea-output", has_text="attempt 1 retried").first
        caption.wait_for(timeout=30_000)
        chain = caption.text_content()  # inner_text is empty while the cell is scrolled away
        assert all(f"attempt {n} retried" in chain for n in range(1, 5)), chain
        assert "attempt 5 failed" in chain, chain
        watch.locator("img").first.wait_for(timeout=30_000)
        watch.screenshot(path=str(shots / "watch-retried.png"))

        # Shown again (the cell re-run), the prediction keeps its first answer, locked.
        cell.scroll_into_view_if_needed()
        cell.locator(".jp-InputPrompt").first.click()
        page.keyboard.press("Escape")
        page.keyboard.press("Control+Enter")
        again = cell.locator(".widget-html:has-text('you said earlier')").first
        again.wait_for(timeout=60_000)
        assert "about 15 minutes" in again.inner_text()
        assert cell.locator(".widget-radio-box input:not([disabled])").count() == 0
        assert not page.js_errors, page.js_errors
