"""Serve Inngest functions from inside a Python process (a notebook kernel, a test).

uvicorn runs on its *own* event loop in a daemon thread, so the kernel's loop is never
patched (no global nest_asyncio) and a cell can block on ``wait`` while the host keeps
answering the engine. Startup has a timeout, a taken port fails at once with a message,
and ``stop()`` is always safe to call again (the fasthtml #870 hang is a restart that
never stopped the previous server).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time

import uvicorn

STARTUP_TIMEOUT_S = 10.0
SHUTDOWN_TIMEOUT_S = 5.0


class HostError(RuntimeError):
    """The function host could not start or stop; the message says what to do."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on. In a graded kernel, one of ``LAB_PORTS`` (the only ports its
    sandbox may bind and reach, see lab_support/sandbox.py); otherwise one the OS picks."""
    block = _port_block()
    if block:
        return _free_port_in(block, host)
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


_next_in_block = 0  # round robin, so a port given out but not yet bound is not given again


def _port_block() -> range | None:
    first, _, last = os.environ.get("LAB_PORTS", "").partition("-")
    if first.isdigit() and last.isdigit() and 0 < int(first) <= int(last) < 65536:
        return range(int(first), int(last) + 1)
    return None


def _free_port_in(block: range, host: str) -> int:
    global _next_in_block
    order = [block[(_next_in_block + i) % len(block)] for i in range(len(block))]
    for reuse in (False, True):  # a port never used first, then one left in TIME_WAIT
        for port in order:
            with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
                if reuse:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind((host, port))
                except OSError:  # taken, or outside what the sandbox allows
                    continue
            _next_in_block = block.index(port) + 1
            return port
    raise HostError(f"every port of LAB_PORTS={block.start}-{block.stop - 1} is in use: stop "
                    "a host or engine this notebook started (lab.stop()) and try again")


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Could a server bind here? (With SO_REUSEADDR, as uvicorn binds: a port in TIME_WAIT
    after a restart is free, a port another process listens on is not.)"""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


class ThreadedHost:
    """An ASGI app served by uvicorn in a daemon thread with its own event loop."""

    def __init__(self, app, *, host: str = "127.0.0.1", port: int | None = None,
                 log_level: str = "warning", lifespan: str = "off") -> None:
        self.app = app
        self.host = host
        self.port = port or free_port(host)
        self._log_level = log_level
        self._lifespan = lifespan  # "on": run the app's startup/shutdown (a full app's DB prep)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return bool(self._thread and self._thread.is_alive() and self._server
                    and self._server.started)

    def start(self, timeout: float = STARTUP_TIMEOUT_S) -> "ThreadedHost":
        if self.running:
            return self
        if not port_is_free(self.port, self.host):
            raise HostError(
                f"Port {self.port} on {self.host} is already in use, so the function host "
                "cannot start. Stop the other process (or the other notebook's lab.stop()), "
                "or start without a fixed port to pick a free one.")
        config = uvicorn.Config(self.app, host=self.host, port=self.port,
                                log_level=self._log_level, lifespan=self._lifespan,
                                access_log=False, timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        # A server in a thread must not steal the kernel's signal handlers.
        self._server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self._error = None
        self._thread = threading.Thread(target=self._run, name=f"lab-host-{self.port}",
                                        daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._server.started:
                return self
            if not self._thread.is_alive():
                break
            time.sleep(0.01)
        self.stop()
        reason = f": {self._error!r}" if self._error else ""
        raise HostError(f"The function host did not start on {self.url} within "
                        f"{timeout:.0f} s{reason}.")

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._server.serve())
        except BaseException as exc:  # reported by start()
            self._error = exc
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self, timeout: float = SHUTDOWN_TIMEOUT_S) -> None:
        server, thread = self._server, self._thread
        if server is not None:
            server.should_exit = True
        if thread is not None and thread.is_alive():
            thread.join(timeout)
            if thread.is_alive() and server is not None:
                server.force_exit = True
                thread.join(timeout)
        self._thread = None
        self._server = None

    def __enter__(self) -> "ThreadedHost":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
