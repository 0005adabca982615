"""`make lab`'s launcher: the command it runs as root and as a user, the viewer setting, the
one block it prints. The real thing runs in tests/test_lab_ux_browser.py."""

from __future__ import annotations

import json
from pathlib import Path

from lab_support import launch

ROOT = Path(__file__).resolve().parents[1]


def test_root_gets_allow_root_and_a_user_does_not():
    as_root = launch.jupyter_command(ROOT, port=8888, uid=0)
    as_user = launch.jupyter_command(ROOT, port=8888, uid=1000)
    assert "--allow-root" in as_root and "--allow-root" not in as_user
    for cmd in (as_root, as_user):
        assert f"--ServerApp.root_dir={ROOT}" in cmd, "serves the repository root"
        assert "--LabApp.default_url=/lab/tree/notebooks/00_quick_win.ipynb" \
            "?file-browser-path=/" in cmd, "opens notebook 00, the file browser at the root"
        assert "--ServerApp.ip=127.0.0.1" in cmd and "--no-browser" in cmd
        assert not any("token" in part for part in cmd), "the token is not on the command line"


def test_extra_arguments_and_address_pass_through():
    cmd = launch.jupyter_command(ROOT, port=9999, ip="0.0.0.0", uid=1000, extra=["--debug"])
    assert "--ServerApp.ip=0.0.0.0" in cmd and "--ServerApp.port=9999" in cmd
    assert cmd[-1] == "--debug"


def test_viewer_setting_is_merged_into_existing_overrides(tmp_path):
    path = launch.settings_file(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({
        "@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"},
        "@jupyterlab/docmanager-extension:plugin": {"autosaveInterval": 30,
                                                    "defaultViewers": {"csv": "CSVTable"}}}))
    launch.write_lab_settings(tmp_path)
    launch.write_lab_settings(tmp_path)  # idempotent
    data = json.loads(path.read_text())
    assert data["@jupyterlab/apputils-extension:themes"] == {"theme": "JupyterLab Dark"}
    doc = data["@jupyterlab/docmanager-extension:plugin"]
    assert doc["autosaveInterval"] == 30
    assert doc["defaultViewers"] == {"csv": "CSVTable", "markdown": "Jupytext Notebook",
                                     "myst": "Jupytext Notebook"}
    assert data["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"


def test_the_banner_is_one_short_block():
    text = launch.banner("http://127.0.0.1:8888/lab/tree/notebooks/00_quick_win.ipynb?token=t",
                         ROOT / ".lab" / "jupyterlab.log", ROOT)
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 4
    assert "token=t" in lines[1] and "00_quick_win.ipynb" in lines[2]
    assert "Ctrl-C" in lines[3] and ".lab/jupyterlab.log" in lines[3]


def test_no_browser_without_a_display(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(launch.sys, "platform", "linux")
    assert not launch.has_display()
    monkeypatch.setenv("DISPLAY", ":0")
    assert launch.has_display()
    monkeypatch.setenv("LAB_NO_BROWSER", "1")
    assert not launch.has_display()
