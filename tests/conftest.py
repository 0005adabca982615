"""Shared test fixtures: the repo and src/ on sys.path, and embedded engines on free ports."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "src"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
# Subprocesses (the engine, papermill kernels) must import the same code.
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(ROOT), str(ROOT / "src")] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
# Tests never talk to a real dev server or a real model by accident; the real-server lane
# (pytest -m real, tests/real_server.py) finds the one you named here instead.
if os.environ.get("INNGEST_DEV"):
    os.environ.setdefault("LAB_REAL_INNGEST_DEV", os.environ["INNGEST_DEV"])
os.environ.pop("INNGEST_DEV", None)
os.environ.pop("OPENAI_API_KEY", None)

from lab_support.engine_process import EngineProcess  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def lab_state_for_tests(tmp_path_factory):
    """Tests never write into the learner's .lab (predictions, progress, engine state):
    every lab object, kernel and notebook run by a test uses this folder instead."""
    folder = tmp_path_factory.mktemp("lab-state")
    before = os.environ.get("LAB_STATE_DIR")
    os.environ["LAB_STATE_DIR"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("LAB_STATE_DIR", None)
    else:
        os.environ["LAB_STATE_DIR"] = before


def _engine_for_tests():
    proc = EngineProcess(memory=True).start()
    try:
        yield proc
    finally:
        proc.stop()
        print("--- engine output ---\n" + proc.output())   # shown when a test fails


@pytest.fixture(scope="module")
def engine():
    """One in-memory embedded engine per test module (virtual clock)."""
    yield from _engine_for_tests()


@pytest.fixture
def fresh_engine():
    """A new in-memory embedded engine for one test."""
    yield from _engine_for_tests()
