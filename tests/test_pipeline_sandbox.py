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


# -- TCP ports (Landlock ABI >= 4) ---------------------------------------------------------
needs_net = pytest.mark.skipif(sandbox.landlock_abi() < sandbox.NET_ABI,
                               reason="needs Landlock ABI >= 4 (TCP port rules)")

NET_PROBE = r'''
import json, socket, sys
from lab_support.host import free_port
engine, other = int(sys.argv[1]), int(sys.argv[2])
def attempt(fn):
    try:
        fn()
        return "allowed"
    except OSError as exc:
        return type(exc).__name__
def connect(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
def bind(port):
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
mine = free_port()
server = socket.socket()
server.bind(("127.0.0.1", mine))
server.listen()
print(json.dumps({
    "free_port": mine,
    "connect own engine": attempt(lambda: connect(engine)),
    "connect other engine": attempt(lambda: connect(other)),
    "connect own host": attempt(lambda: connect(mine)),
    "connect ipv6 other": attempt(lambda: socket.create_connection(("::1", other), timeout=5)),
    "bind ephemeral": attempt(lambda: bind(0)),
    "bind other's port": attempt(lambda: bind(other + 1)),
}))
'''


@pytest.fixture
def listeners():
    """Two loopback listeners on ephemeral ports: "our engine" and "another job's engine"."""
    made = []
    for _ in range(2):
        s = __import__("socket").socket()
        s.bind(("127.0.0.1", 0))
        s.listen()
        made.append(s)
    yield [s.getsockname()[1] for s in made]
    for s in made:
        s.close()


@needs_net
def test_a_confined_process_reaches_only_its_ports_and_its_engine(box, tmp_path, listeners):
    engine, other = listeners
    block = sandbox.reserve_ports(lock_dir=tmp_path / "locks")
    try:
        policy = box.policy(memory_mb=512, file_mb=64, confine="landlock", protected=[ROOT],
                            ports=block, connect=[engine])
        assert policy["net_confined"] and engine in policy["connect_ports"]
        policy_file = box.write_policy(policy, box.root.parent / "policy.json")
        done = subprocess.run(
            launcher(policy_file, [sys.executable, "-c", NET_PROBE, str(engine), str(other)]),
            cwd=box.submission, env=box.env({"LAB_PORTS": block.spare}), capture_output=True,
            text=True, timeout=120)
    finally:
        block.release()
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert block.first + len(sandbox.KERNEL_CHANNELS) <= seen.pop("free_port") \
        < block.first + block.size
    assert seen == {"connect own engine": "allowed", "connect other engine": "PermissionError",
                    "connect own host": "allowed", "connect ipv6 other": "PermissionError",
                    "bind ephemeral": "PermissionError", "bind other's port": "PermissionError"}


def test_port_blocks_are_exclusive_outside_the_ephemeral_range(tmp_path):
    low, high = sandbox.ephemeral_range()
    locks = tmp_path / "locks"
    first = sandbox.reserve_ports(lock_dir=locks)
    # Another process holds the next block: it must be skipped, not shared.
    held = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time\n"
        "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('held', flush=True)\ntime.sleep(60)\n"),
        str(locks / f"{first.first + first.size}.lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert held.stdout.readline().strip() == "held"
        second = sandbox.reserve_ports(lock_dir=locks)
        try:
            assert second.first >= first.first + 2 * first.size
            for block in (first, second):
                span = range(block.first, block.first + block.size)
                assert span[-1] < low or span[0] > high, (span, low, high)
        finally:
            second.release()
    finally:
        held.kill()
        held.wait(10)
    first.release()
    again = sandbox.reserve_ports(lock_dir=locks)   # released: the first block is free again
    assert again.first == first.first
    again.release()


def test_a_port_in_use_is_left_out_of_the_block(tmp_path):
    import socket

    probe = sandbox.reserve_ports(lock_dir=tmp_path / "probe")
    probe.release()
    # a port of the block that is free now (an earlier kernel's channels may sit in TIME_WAIT)
    busy = socket.socket()
    busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    for taken in probe.ports[len(sandbox.KERNEL_CHANNELS):]:
        try:
            busy.bind(("127.0.0.1", taken))
            break
        except OSError:
            continue
    else:
        pytest.fail(f"no port of {probe.ports} could be bound for the test")
    busy.listen()
    try:
        block = sandbox.reserve_ports(lock_dir=tmp_path / "locks")
        try:
            assert block.first == probe.first and taken not in block.ports
        finally:
            block.release()
    finally:
        busy.close()
