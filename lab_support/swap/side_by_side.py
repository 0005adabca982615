"""One email to each engine, the same crash armed in both, both workers brought back.

``crash_both`` is the Break-it loop of notebook 25 and its exercise: the two crashes and the
two restarts overlap (the DBOS worker starts while the Inngest host restarts), so the pair costs
about one restart of wall time.
"""

from __future__ import annotations

from pathlib import Path

from ..host import HostError
from . import crash

EVENT = "swap/email.received"
HOST_START_TIMEOUT_S = 120


def restart_host(lab, timeout: float = HOST_START_TIMEOUT_S) -> None:
    """``lab.restart_host()`` with a longer wait for the new process (a loaded machine can take
    more than the lab's default 20 s to import the Worker).

    On a loaded machine a new host process has been seen to answer its first request and be
    gone a moment later, before it took its settings. It is started once more then; the
    crash log still counts every step body, so a host that died *in a step* would show there
    (a second ``CRASH at ...``), not be hidden. A second failure raises with the host's log."""
    host = getattr(lab, "_host", None)
    for attempt in (1, 2):
        if host is not None and hasattr(host, "alive") and not host.alive():
            host.start(timeout=timeout)
        try:
            lab.restart_host()
            return
        except HostError as exc:
            if attempt == 2 or host is None or not hasattr(host, "alive") or host.alive():
                raise HostError(f"{exc}\nThe host's log ends with:\n{_log_tail(host)}") from exc


def _log_tail(host, chars: int = 1500) -> str:
    path = getattr(host, "log_path", None)
    if path is None or not Path(path).exists():
        return "(no log)"
    return Path(path).read_text(encoding="utf-8", errors="replace")[-chars:]


def crash_both(lab, dbos, point: str, data: dict, email_ids: dict, *,
               timeout: float = 120) -> dict:
    """Send ``data`` as email ``email_ids["inngest"]`` to Inngest and ``email_ids["dbos"]`` to
    DBOS with ``point`` armed for both; when both worker processes died there, start them
    again and wait for both flows. Returns each engine's final status."""
    for engine in crash.ENGINES:
        crash.arm(point, engine)
    event_ids = lab.send(EVENT, data, id=email_ids["inngest"])
    dbos.send(email_ids["dbos"], data)
    crash.wait_fired(point, "inngest", timeout=timeout)
    crash.wait_fired(point, "dbos", timeout=timeout)
    dbos.worker.wait_exit(timeout=timeout)
    dbos.worker.launch()               # DBOS starts while the Inngest host restarts
    restart_host(lab, timeout)
    dbos.worker.wait_ready()
    run = lab.wait(event_ids[0], timeout=timeout)
    return {"inngest": run["status"], "dbos": dbos.wait(email_ids["dbos"], timeout=timeout).status}
