"""The engine benchmark runs end to end on the embedded engine (small sizes; no timing asserts)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def load_benchmark():
    spec = importlib.util.spec_from_file_location("engine_latency",
                                                  ROOT / "benchmarks" / "engine_latency.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_table_reports_ratios_against_the_baseline():
    bench = load_benchmark()
    result = bench.Result("embedded engine", latency_s=0.9, burst_s=2.0, burst=200)
    text = bench.table([result])
    assert "0.50x" in text  # 0.9 s against the 1.8 s baseline
    assert "1.54x" in text  # 100 runs/s against 65


def test_benchmark_runs_on_the_embedded_engine(engine, capsys):
    bench = load_benchmark()
    assert bench.main(["--engine-url", engine.url, "--runs", "2", "--burst", "10",
                       "--timeout", "60"]) == 0
    out = capsys.readouterr().out
    assert "embedded engine" in out and "baseline" in out
