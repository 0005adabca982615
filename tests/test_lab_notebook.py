"""Execute tests/smoke_lab.ipynb with papermill: every lab call against the embedded engine."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "tests" / "smoke_lab.ipynb"

pytestmark = [pytest.mark.notebook, pytest.mark.slow, pytest.mark.timeout(600)]


def outputs_of(nb, mime: str) -> list:
    return [out["data"][mime] for cell in nb.cells if cell.cell_type == "code"
            for out in cell.get("outputs", []) if mime in out.get("data", {})]


def test_smoke_notebook_runs_top_to_bottom(tmp_path):
    papermill = pytest.importorskip("papermill")
    out = tmp_path / "smoke_lab.out.ipynb"
    papermill.execute_notebook(str(NOTEBOOK), str(out), kernel_name="python3", cwd=str(ROOT),
                               parameters={"ENGINE": "embedded", "MEMORY": True},
                               execution_timeout=240, progress_bar=False)
    nb = nbformat.read(out, as_version=4)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    html = "\n".join(outputs_of(nb, "text/html"))
    assert "lab ready" in html and "embedded" in html   # status panel, HTML fallback
    assert "lab-predict" in html                          # the prediction widget's fallback
    assert "lab-mcp" in html and "lab-mcp-tools" in html  # lab.mcp's request/answer views
    assert outputs_of(nb, "application/vnd.jupyter.widget-view+json")  # live widgets too
    assert len(outputs_of(nb, "image/png")) >= 2          # watch timeline + calibration kept
