"""The real-server test lane's server: ``INNGEST_DEV`` when it answers, else an ``inngest``
binary on PATH started here (one fresh in-memory server per use), else a skip with a reason.

``conftest.py`` removes ``INNGEST_DEV`` from the environment so no embedded-lane test talks to
a real server by accident; it keeps the value as ``LAB_REAL_INNGEST_DEV`` for this lane.
Everything binds 127.0.0.1, side ports included (the dev server's connect gateway and gRPC
ports would otherwise take fixed, shared numbers).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from lab_support.engine_process import terminate
from lab_support.engines import dev_url_from_env, probe
from lab_support.host import free_port

URL_ENV = "LAB_REAL_INNGEST_DEV"
READY_TIMEOUT_S = 60.0


def configured_url() -> str | None:
    return dev_url_from_env(os.environ.get(URL_ENV))


def binary() -> str | None:
    return shutil.which("inngest")


def skip_reason() -> str | None:
    url = configured_url()
    if url:
        info = probe(url)
        if info is None:
            return f"INNGEST_DEV={url} does not answer GET /dev"
        if info.get("engine") == "embedded":
            return f"INNGEST_DEV={url} is the lab's embedded engine, not a real dev server"
        return None
    if binary():
        return None
    return ("no real Inngest dev server: set INNGEST_DEV to one's URL or put an `inngest` "
            "binary on PATH (see README, 'Using the real Inngest dev server')")


def dev_command(exe: str, port: int) -> list[str]:
    side = [free_port() for _ in range(3)]
    return [exe, "dev", "--no-discovery", "--no-poll", "--host", "127.0.0.1",
            "--port", str(port),
            "--connect-gateway-port", str(side[0]),
            "--connect-gateway-grpc-port", str(side[1]),
            "--connect-executor-grpc-port", str(side[2]),
            "--connect-gateway-grpc-ip", "127.0.0.1",
            "--connect-executor-grpc-ip", "127.0.0.1"]


@contextlib.contextmanager
def real_dev_server():
    """Yields the URL of a real dev server; skips the test when there is none."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    url = configured_url()
    if url:
        yield url
        return
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="lab-real-dev-") as folder:
        log_path = Path(folder) / "inngest-dev.log"
        with log_path.open("w") as log:
            proc = subprocess.Popen(dev_command(binary(), port), cwd=folder, stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + READY_TIMEOUT_S
            while probe(url, timeout=0.5) is None:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"`inngest dev` did not come up at {url} within "
                                f"{READY_TIMEOUT_S:.0f} s (exit {proc.poll()}):\n"
                                f"{log_path.read_text(errors='replace')[-3000:]}")
                time.sleep(0.25)
            yield url
        finally:
            terminate(proc, 15)
