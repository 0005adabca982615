"""A crash both engines can suffer at the same point, and a log of what each one executed.

The kernel and the worker processes share one folder (``SWAP_LAB_DIR``, set by the kernel
before it starts a worker). ``arm("before-save-draft", "dbos")`` writes
``dbos.before-save-draft.armed`` there; the first DBOS step body that reaches
``crash_point("before-save-draft", "dbos")`` removes the file, notes its pid in
``….fired`` and sends SIGKILL to its own process: a real crash (no exception, no cleanup, no
reply to anyone). Removing the file first makes it one crash, however often the step is
retried afterwards. ``wait_fired`` returns once that process is gone.

Every step body calls ``ran(engine, step)``, which appends one line to ``executions.log``, so
the kernel can count step executions in processes whose memory it cannot see.
"""

from __future__ import annotations

import collections
import os
import signal
from pathlib import Path

ENV = "SWAP_LAB_DIR"
LOG = "executions.log"


def folder() -> Path:
    value = os.environ.get(ENV, "").strip()
    if not value:
        raise RuntimeError(f"{ENV} is not set: the kernel sets it (swap folder) before it "
                           "starts a worker process")
    path = Path(value)
    path.mkdir(parents=True, exist_ok=True)
    return path


ENGINES = ("inngest", "dbos")


def _name(point: str, engine: str) -> str:
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    return f"{engine}.{point}"


def arm(point: str, engine: str) -> Path:
    """Make the next step body of ``engine`` that reaches ``point`` kill its process."""
    name = _name(point, engine)
    (folder() / f"{name}.fired").unlink(missing_ok=True)
    marker = folder() / f"{name}.armed"
    marker.write_text("armed\n", encoding="utf-8")
    return marker


def disarm_all() -> None:
    for marker in [*folder().glob("*.armed"), *folder().glob("*.fired")]:
        marker.unlink(missing_ok=True)


def armed() -> list[str]:
    return sorted(p.name.removesuffix(".armed") for p in folder().glob("*.armed"))


def crash_point(point: str, engine: str) -> None:
    """Called inside step bodies: if ``point`` is armed, disarm it and die at once."""
    name = _name(point, engine)
    try:
        (folder() / f"{name}.armed").unlink()
    except FileNotFoundError:
        return
    ran(engine, f"CRASH at {point}")
    (folder() / f"{name}.fired").write_text(str(os.getpid()), encoding="utf-8")
    os.kill(os.getpid(), signal.SIGKILL)


def ran(engine: str, step: str) -> None:
    with open(folder() / LOG, "a", encoding="utf-8") as log:
        log.write(f"{engine}\t{step}\n")


def executions(engine: str | None = None) -> collections.Counter:
    """Step bodies run so far (per step), for one engine or all."""
    log = folder() / LOG
    counts: collections.Counter = collections.Counter()
    if log.exists():
        for line in log.read_text(encoding="utf-8").splitlines():
            who, _, step = line.partition("\t")
            if engine is None or who == engine:
                counts[step] += 1
    return counts


def clear_log() -> None:
    (folder() / LOG).unlink(missing_ok=True)


def _gone(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_fired(point: str, engine: str, timeout: float = 60) -> int:
    """Wait until the armed ``point`` has fired and the process it killed is gone; its pid."""
    import time

    name = _name(point, engine)
    marker, fired = folder() / f"{name}.armed", folder() / f"{name}.fired"
    deadline = time.monotonic() + timeout
    while True:
        if not marker.exists() and fired.exists():
            text = fired.read_text(encoding="utf-8").strip()
            if text and _gone(int(text)):
                fired.unlink(missing_ok=True)
                return int(text)
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {engine} step reached the crash point {point!r} within "
                               f"{timeout:.0f} s: is a worker running, and did the email arrive?")
        time.sleep(0.05)
