"""The grader's sandbox on its own: what a confined process may read, write and signal, its
limits, and Postgres (pgserver) running inside it. No kernel, so these are quick."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lab_support import sandbox
from lab_support.sandbox import Sandbox, SandboxError, launcher

ROOT = Path(__file__).resolve().parents[1]
ALICE = ROOT / "tests" / "pipeline_fixtures" / "submissions" / "alice"
needs_landlock = pytest.mark.skipif(sandbox.landlock_abi() < 6,
                                    reason="needs Landlock ABI >= 6 (file and signal scopes)")

PROBE = r'''
import json, os, pathlib, resource, sys
root = pathlib.Path(sys.argv[1])
def attempt(fn):
    try:
        fn()
        return "allowed"
    except Exception as exc:
        return type(exc).__name__
print(json.dumps({
    "read checkout": attempt(lambda: (root / "README.md").read_text()),
    "write checkout": attempt(lambda: (root / "escape.txt").write_text("x")),
    "write copy": attempt(lambda: open("../lab_support/checks.py", "a")),
    "read copy": attempt(lambda: open("../lab_support/checks.py").read()),
    "write submission": attempt(lambda: pathlib.Path("note.txt").write_text("x")),
    "write .lab": attempt(lambda: pathlib.Path("../.lab/x").write_text("x")),
    "signal parent": attempt(lambda: os.kill(os.getppid(), 0)),
    "raise memory limit": attempt(lambda: resource.setrlimit(resource.RLIMIT_AS, (-1, -1))),
    "allocate 1 GB": attempt(lambda: bytearray(1 << 30)),
    "cwd": os.getcwd(),
}))
'''


@pytest.fixture
def box(tmp_path):
    made = Sandbox.create(tmp_path, "box", ALICE)
    yield made
    made.remove()


def run(box: Sandbox, code: str, *args: str, memory_mb: int = 512) -> subprocess.CompletedProcess:
    policy = box.policy(memory_mb=memory_mb, file_mb=64, confine="landlock", protected=[ROOT])
    policy_file = box.write_policy(policy, box.root.parent / "policy.json")
    return subprocess.run(launcher(policy_file, [sys.executable, "-c", code, *args]),
                          cwd=box.submission, env=box.env(), capture_output=True, text=True,
                          timeout=120)


def test_layout_holds_copies_and_never_solutions(box):
    assert (box.root / "lab_support" / "checks.py").is_file()
    assert (box.submission / "fizz.ipynb").is_file()
    assert not (box.root / "solutions").exists() and not (box.root / "tests").exists()
    assert not (box.root / "lab_support" / "checks.py").stat().st_mode & 0o222  # read-only


@needs_landlock
def test_a_confined_process_reaches_only_its_sandbox(box):
    done = run(box, PROBE, str(ROOT))
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen == {
        "read checkout": "PermissionError", "write checkout": "PermissionError",
        "write copy": "PermissionError", "read copy": "allowed", "write submission": "allowed",
        "write .lab": "allowed", "signal parent": "PermissionError",
        "raise memory limit": "ValueError", "allocate 1 GB": "MemoryError",
        "cwd": str(box.submission)}
    assert not (ROOT / "escape.txt").exists()


@needs_landlock
def test_postgres_runs_inside_the_sandbox(box):
    code = ("import pathlib, pgserver, psycopg\n"
            "server = pgserver.get_server(str(pathlib.Path('../.lab/pg').resolve()), "
            "cleanup_mode='stop')\n"
            "with psycopg.connect(server.get_uri()) as conn:\n"
            "    print(conn.execute('select 40 + 2').fetchone()[0])\n"
            "server.cleanup()\n")
    done = run(box, code, memory_mb=4096)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("42")


def test_a_grant_that_would_expose_a_protected_path_is_refused(box):
    with pytest.raises(SandboxError, match="lies inside"):
        box.policy(memory_mb=512, file_mb=64, protected=[Path(sys.prefix) / "lib"])
    with pytest.raises(SandboxError, match="sandbox folder"):
        box.policy(memory_mb=512, file_mb=64, protected=[box.root.parent])


def test_a_root_grader_creates_the_postgres_user_before_confining(tmp_path, monkeypatch):
    """On a fresh machine the pgserver user does not exist yet, and a confined kernel cannot
    create it (/etc is read-only there): the grader's trusted side must."""
    import pgserver.utils

    asked = []
    monkeypatch.setattr(pgserver.utils, "ensure_user_exists", lambda name: asked.append(name))
    monkeypatch.setattr(sandbox.os, "geteuid", lambda: 0)
    made = Sandbox.create(tmp_path, "box", ALICE)
    try:
        made.policy(memory_mb=1024, file_mb=64, confine="auto")
    finally:
        made.remove()
    assert asked == ["pgserver"]
