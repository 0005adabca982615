"""The lab's clock as a URL, for the Worker on a real dev server.

On the embedded engine the Worker's ``WORKER_CLOCK_URL`` is the engine's ``/lab/v1/clock``,
so advancing the virtual clock ages customers. A real dev server has no clock to point at;
there ``lab.clock.now()`` is wall time, or the lab's schedule cursor once ``lab.clock``
fired cron ticks ahead of it. This module serves exactly that reading on a loopback port
(``GET /`` answers ``{"now": <RFC 3339>, "now_ms": <epoch ms>}``), so the Worker's "now", the
ticks the lab fires and ``lab.clock.now()`` stay one timeline on both engines: a virtual week
fired tick by tick still ages every customer by a week.

It asks ``lab.clock`` at every request (the lab may replace its clock with a new engine).
``worker_host`` starts one with the app's host on a real server and stops it with the host.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

from .client import to_rfc3339

if TYPE_CHECKING:
    from .lab_object import Lab

STOP_TIMEOUT_S = 5.0


class ScheduleClock:
    """A loopback HTTP server answering ``lab.clock.now()``; ``url`` is for WORKER_CLOCK_URL."""

    def __init__(self, lab: "Lab") -> None:
        self._lab = lab
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("The schedule clock is not serving: call start() first.")
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def start(self) -> "ScheduleClock":
        if self._server is not None:
            return self
        lab = self._lab

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                try:
                    now = lab.clock.now()
                    body, status = {"now": to_rfc3339(now),
                                    "now_ms": int(now.timestamp() * 1000)}, 200
                except Exception as exc:  # noqa: BLE001 - the Worker reports it as unavailable
                    body, status = {"error": f"{type(exc).__name__}: {exc}"}, 503
                raw = json.dumps(body).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args) -> None:  # one line per Worker query: keep quiet
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)  # the OS picks the port
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="lab-schedule-clock", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=STOP_TIMEOUT_S)
        self._server, self._thread = None, None
