"""What the notebooks owe a learner, checked on the committed files (no kernel, no engine):
predict cells hide their answer, the import cell explains a foreign kernel, exercises start
over from their setup cell."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
EXERCISES = sorted((ROOT / "exercises").glob("*.ipynb"))
ALL = NOTEBOOKS + SOLUTIONS + EXERCISES


def code_cells(path: Path):
    return [c for c in nbformat.read(str(path), as_version=4).cells if c.cell_type == "code"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_predict_cells_hide_their_source(path):
    cells = [c for c in code_cells(path) if "lab.predict(" in c.source]
    assert cells
    for cell in cells:
        assert cell.metadata.get("jupyter", {}).get("source_hidden") is True, cell.source[:60]


def import_cell(path: Path):
    return next(c for c in code_cells(path) if "from lab_support import lab" in c.source)


@pytest.mark.parametrize("path", ALL, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_import_cell_opens_with_the_kernel_guard(path):
    source = import_cell(path).source
    assert source.startswith("try:") and "make kernel" in source, source[:200]


def test_a_kernel_without_lab_support_is_told_to_run_make_kernel(tmp_path):
    source = import_cell(NOTEBOOKS[0]).source
    # -S: no site-packages, so neither lab_support (an editable install) nor the SDK imports,
    # as in a kernel from another environment.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-S", "-c", source], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ModuleNotFoundError: No module named 'lab_support'"), proc.stderr
    assert "run `make kernel`" in last and "Production Worker Lab" in last


@pytest.mark.parametrize("path", SOLUTIONS + EXERCISES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_exercises_start_over_from_their_setup_cell(path):
    nb = nbformat.read(str(path), as_version=4)
    setup = next(n for n, c in enumerate(nb.cells)
                 if c.cell_type == "code" and "from lab_support import lab" in c.source)
    # the last line resets (indented when guarded by lab.embedded_only for a real dev server)
    assert nb.cells[setup].source.rstrip().splitlines()[-1].lstrip().startswith("lab.reset()")
    note = nb.cells[setup - 1]
    assert note.cell_type == "markdown" and note.source.startswith("## Setup")
    assert "Run Selected Cell and All Below" in note.source
