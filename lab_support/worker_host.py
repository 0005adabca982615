"""``lab.start(app=...)``: serve a whole ASGI app under the lab, not just a list of functions.

``lab.start(functions)`` builds its own FastAPI host. ``lab.start(app=create_app())`` serves the
app you built, e.g. the Worker's ``chat_agent.serve.create_app()`` with its Postmark webhook
and reviewer routes, from the same swappable thread host, so ``lab.trace``, ``lab.watch``,
``lab.wait``, the clock and chaos keep working. While the app is served:

* ``INNGEST_DEV`` names the lab's engine: the app's Inngest client must register with and
  send to it (``chat_agent.inngest_client`` reads it at call time, so an app built before
  ``lab.start`` still finds the engine);
* ``WORKER_CLOCK_URL`` is the engine's ``/lab/v1/clock``, so the Worker's "now" is the
  virtual clock and advancing a week ages customers and activity; on a real dev server it is
  a loopback URL answering ``lab.clock.now()`` (``schedule_clock``: the lab's schedule
  cursor), so the cron ticks ``lab.clock`` fires there age them the same way;
* ``lab.model`` is serving and ``CHAT_AGENT_MODEL_URL`` names it, so the Worker's model calls
  count against its limit and show in its usage.

Each variable is put back as it was when the host stops (``lab.stop()``, or a new
``lab.start``). After the sync the lab learns what is served: from ``app.state``
(``inngest_functions``, ``inngest_client``, ``inngest_serve_path``, as ``chat_agent.serve``
sets them), else from the engine's apps (the one whose URL is this host's).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .engines import RealDevProcess, lab_state_dir
from .function_host import SERVE_PATH, ThreadHost, sync
from .host import free_port

if TYPE_CHECKING:
    from .lab_object import Lab

APP_STARTUP_TIMEOUT_S = 120.0  # an app's startup may migrate and seed a database
CLOCK_URL_ENV = "WORKER_CLOCK_URL"


@dataclass(frozen=True)
class SyncedFunction:
    """A served function the lab knows only from the engine (``id`` is its slug)."""

    id: str
    name: str


class EnvOverrides:
    """Environment variables set for a while, then put back exactly as they were."""

    def __init__(self) -> None:
        self._before: dict[str, str | None] = {}

    def set(self, name: str, value: str) -> None:
        self._before.setdefault(name, os.environ.get(name))
        os.environ[name] = value

    def restore(self) -> None:
        for name, value in self._before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._before.clear()


def serve_path_of(app) -> str:
    """Where the app serves its Inngest functions."""
    state = getattr(app, "state", None)
    path = getattr(state, "inngest_serve_path", None) if state is not None else None
    if isinstance(path, str) and path.startswith("/"):
        return path
    for route in getattr(app, "routes", None) or []:
        endpoint = getattr(route, "endpoint", None)
        if endpoint is not None and getattr(endpoint, "__module__", "") == "inngest.fast_api":
            return route.path
    return SERVE_PATH


def _check_app(app, host: str) -> None:
    if host != "thread":
        raise ValueError("lab.start(app=...) serves the app from a thread in this kernel "
                         "(host='thread'). To crash a Worker process, serve it yourself "
                         "(uvicorn chat_agent.serve:app) and sync it, or use functions with "
                         "host='process'.")
    if not callable(app):
        raise TypeError(f"app must be an ASGI app (e.g. a FastAPI app), not {app!r}")


def _learn(lab: "Lab", app) -> None:
    """Set lab.app_id / lab.functions / lab.serve_client from the app or the engine."""
    state = getattr(app, "state", None)
    functions = getattr(state, "inngest_functions", None) if state is not None else None
    client = getattr(state, "inngest_client", None) if state is not None else None
    if functions and client is not None:
        lab.app_id, lab.functions, lab.serve_client = client.app_id, list(functions), client
        return
    data = lab.api.gql("query { apps { externalID url functions { slug name } } }")
    base = lab._host.base_url
    # The real dev server stores a 127.0.0.1 app URL as http://localhost:<port>/...
    bases = {base, base.replace("://127.0.0.1:", "://localhost:", 1)}
    for found in data.get("apps") or []:
        if any((found.get("url") or "").startswith(b) for b in bases):
            lab.app_id = found["externalID"]
            lab.functions = [SyncedFunction(f["slug"], f["name"]) for f in found["functions"]]
            lab.serve_client = client
            return
    raise RuntimeError(f"The engine has no app served from {base} after the sync; check that "
                       f"the app serves Inngest functions at {serve_path_of(app)}.")


def _point_worker_at_lab(lab: "Lab") -> None:
    env = lab._worker_env
    if os.environ.get("INNGEST_DEV") != lab.api.url:
        env.set("INNGEST_DEV", lab.api.url)
    if lab.api.kind == "embedded":
        env.set(CLOCK_URL_ENV, lab.api.url + "/lab/v1/clock")
    else:
        from .schedule_clock import ScheduleClock

        lab._schedule_clock = lab._schedule_clock or ScheduleClock(lab)
        env.set(CLOCK_URL_ENV, lab._schedule_clock.start().url)
    lab.model.start()


def start_app(lab: "Lab", app, *, engine: str, host: str, port: int | None,
              engine_port: int | None, memory: bool, quiet: bool,
              tier: str | None = None) -> "Lab":
    _check_app(app, host)
    lab._stop_host()
    lab.state_dir = lab_state_dir()
    port = port or free_port()
    lab._ensure_engine(engine, engine_port=engine_port, memory=memory, host_port=port)
    _point_worker_at_lab(lab)
    lab._host = ThreadHost(app, port=port, serve_path=serve_path_of(app), lifespan="on")
    lab._host.start(timeout=APP_STARTUP_TIMEOUT_S)
    lab._served_app = app
    if isinstance(lab._engine_proc, RealDevProcess) and not lab._engine_proc.alive():
        lab._engine_proc.start()
    lab._configure_host()  # Retry-After on a real dev server (host_faults)
    lab.set_tier(tier)  # plan limits (engine-cap) apply to this sync
    sync(lab._host.url)
    _learn(lab, app)
    if not quiet:
        lab.status()
    return lab


def update_app(lab: "Lab", app) -> "Lab":
    """Serve another version of the app on the same host and engine, and re-sync."""
    if not isinstance(lab._host, ThreadHost) or lab._served_app is None:
        raise RuntimeError("No app is being served: call lab.start(app=...) first.")
    _check_app(app, "thread")
    path = serve_path_of(app)
    if path != lab._host.serve_path:
        raise ValueError(f"The new app serves Inngest at {path}, the running one at "
                         f"{lab._host.serve_path}; start it with lab.start(app=...) instead.")
    lab._host.swap(app)
    lab._served_app = app
    sync(lab._host.url)
    _learn(lab, app)
    return lab


def release(lab: "Lab") -> None:
    """Put the environment back (called whenever the lab's host stops)."""
    lab._served_app = None
    if lab._schedule_clock is not None:
        lab._schedule_clock.stop()
    lab._worker_env.restore()
