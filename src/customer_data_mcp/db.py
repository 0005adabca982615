"""Find the database: ``DATABASE_URL`` when set (Neon or any Postgres), else an embedded
Postgres 16 + pgvector started from Python with ``pgserver`` under ``.lab/pg``.

Starting is idempotent: a second call in the same process reuses the server, and another
process pointing at the same directory joins the already-running postmaster (pgserver keeps a
list of the processes using it and stops the server when the last one exits).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import warnings
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

REPO_ROOT = Path(__file__).resolve().parents[2]
CONNECT_TIMEOUT_S = 10

# pgserver narrates every start/stop at INFO; keep notebooks and test logs readable.
logging.getLogger("pgserver").setLevel(logging.WARNING)

_lock = threading.Lock()
_servers: dict[Path, object] = {}


class DatabaseError(RuntimeError):
    """The database could not be reached or started; the message says what to check."""


def default_pg_dir() -> Path:
    """``$LAB_PG_DIR``, else ``.lab/pg`` in the repo (or the current directory when installed)."""
    if os.environ.get("LAB_PG_DIR"):
        return Path(os.environ["LAB_PG_DIR"]).resolve()
    base = REPO_ROOT if (REPO_ROOT / "pyproject.toml").exists() else Path.cwd()
    return base / ".lab" / "pg"


def start_embedded(pgdata: str | Path | None = None):
    """Start (or reuse) the embedded Postgres in ``pgdata``; returns the pgserver handle."""
    path = Path(pgdata).resolve() if pgdata else default_pg_dir()
    with _lock:
        if path in _servers:
            return _servers[path]
        path.mkdir(parents=True, exist_ok=True)
        _prune_dead_handles(path)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # pgserver's XDG_RUNTIME_DIR notice
                import pgserver

                server = pgserver.get_server(path, cleanup_mode="stop")
        except Exception as exc:  # pgserver raises plain exceptions with its log inside
            raise DatabaseError(
                f"Could not start the embedded Postgres in {path}: {exc}. Delete that folder "
                "to start over, or set DATABASE_URL to use another Postgres.") from exc
        # atexit runs last-registered first: this prune runs before pgserver's own cleanup, so
        # a child that died uncleanly cannot keep the server alive after we exit.
        atexit.register(_prune_dead_handles, path)
        _servers[path] = server
        return server


def _prune_dead_handles(path: Path) -> None:
    """Forget processes that died without cleaning up (a killed kernel, a re-raised SIGTERM).
    pgserver stops the server only when the last *recorded* user exits, so a stale entry
    would keep Postgres running forever."""
    handles = path / ".handle_pids.json"
    if not handles.exists():
        return
    import psutil  # a pgserver dependency

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver.postgres_server import PostgresServer
    with PostgresServer._lock:  # the inter-process lock pgserver itself takes for this file
        try:
            pids = json.loads(handles.read_text() or "[]")
        except ValueError:
            pids = []
        alive = [p for p in pids if isinstance(p, int) and psutil.pid_exists(p)]
        if alive != pids:
            handles.write_text(json.dumps(alive))


def stop_embedded(pgdata: str | Path | None = None) -> None:
    """Stop the embedded Postgres this process started (no-op if none)."""
    path = Path(pgdata).resolve() if pgdata else default_pg_dir()
    with _lock:
        server = _servers.pop(path, None)
    if server is not None:
        _prune_dead_handles(path)  # a killed worker's stale entry would keep it running
        server.cleanup()


def database_url() -> str:
    """The URL every module uses: ``DATABASE_URL`` or the embedded server's URI."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if url:
        return url
    return start_embedded().get_uri()


def connect(url: str | None = None, *, autocommit: bool = False) -> psycopg.Connection:
    """A new connection with dict rows. Use it as a context manager: the block is one
    transaction (committed on success, rolled back on error)."""
    target = url or database_url()
    try:
        return psycopg.connect(target, row_factory=dict_row, autocommit=autocommit,
                               connect_timeout=CONNECT_TIMEOUT_S)
    except psycopg.OperationalError as exc:
        shown = target.split("@")[-1]  # never echo a password
        raise DatabaseError(f"Could not connect to Postgres at ...@{shown}: {exc}") from exc
