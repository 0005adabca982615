"""The dashboard's files: self-contained (no CDN, no build step) and syntactically valid."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

DASHBOARD = Path(__file__).resolve().parents[1] / "lab_support" / "devserver" / "dashboard"
FILES = ("index.html", "app.js", "style.css")


def test_files_exist():
    for name in FILES:
        assert (DASHBOARD / name).is_file(), f"missing dashboard/{name}"


@pytest.mark.parametrize("name", FILES)
def test_nothing_is_loaded_from_another_origin(name):
    text = (DASHBOARD / name).read_text(encoding="utf-8")
    assert not re.search(r"https?://|//cdn|@import", text), \
        f"dashboard/{name} must only use the engine's own origin"


def test_index_loads_its_assets_from_the_dashboard_route():
    html = (DASHBOARD / "index.html").read_text(encoding="utf-8")
    assert 'src="/dashboard/app.js"' in html
    assert 'href="/dashboard/style.css"' in html


def test_app_uses_only_engine_endpoints_from_the_contract():
    js = (DASHBOARD / "app.js").read_text(encoding="utf-8")
    paths = set(re.findall(r'["`](/(?:v0|v1|lab/v1|e)/[^"`?$]*)', js))
    allowed = ("/v0/gql", "/v1/events", "/v1/cancellations", "/lab/v1/clock",
               "/lab/v1/runs", "/lab/v1/replay", "/e/lab")
    assert paths, "expected the dashboard to call the engine API"
    for path in paths:
        assert path.startswith(allowed), f"unexpected engine path {path}"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_app_js_parses():
    result = subprocess.run(["node", "--check", str(DASHBOARD / "app.js")],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
