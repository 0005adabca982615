"""A crash both engines can suffer at the same point, and a log of what each one executed.

The kernel and the worker processes share one folder (``SWAP_LAB_DIR``, set by the kernel
before it starts a worker). ``arm("before-save-draft")`` writes ``<point>.armed`` there; the
first step body that reaches ``crash_point("before-save-draft")`` removes the file and sends
SIGKILL to its own process, a real crash (no exception, no cleanup, no reply to anyone).
Removing the file first makes it one crash, whichever engine retries the step afterwards.

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


def arm(point: str) -> Path:
    """Make the next step body that reaches ``point`` kill its process."""
    marker = folder() / f"{point}.armed"
    marker.write_text("armed\n", encoding="utf-8")
    return marker


def disarm_all() -> None:
    for marker in folder().glob("*.armed"):
        marker.unlink(missing_ok=True)


def armed() -> list[str]:
    return sorted(p.name.removesuffix(".armed") for p in folder().glob("*.armed"))


def crash_point(point: str, engine: str) -> None:
    """Called inside step bodies: if ``point`` is armed, disarm it and die at once."""
    marker = folder() / f"{point}.armed"
    try:
        marker.unlink()
    except FileNotFoundError:
        return
    ran(engine, f"CRASH at {point}")
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
