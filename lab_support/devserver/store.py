"""Engine state: in memory for speed, persisted to SQLite so a restart resumes.

Every mutation marks a document dirty. A *flush* takes the dirty set on the event loop
(serialising each document there, so no other thread ever reads a live object) and hands it
to one writer thread, which writes it in one transaction. The single writer keeps flushes in
the order they were taken, so an older snapshot never overwrites a newer one.

``await durable()`` is the acknowledgement barrier (``POST /e`` answers only after it): it
returns once every change made before the call is committed. Callers that arrive while a
flush is being written wait for it and then share the next one, so a burst of concurrent
requests costs one transaction and one fsync per round, not one each (group commit). The
database runs in WAL mode with ``synchronous=FULL``: a commit is fsynced before it returns,
so what was acknowledged survives a killed process and, as far as the disk honours fsync,
a power cut. The scheduler also flushes every few ms, and ``close`` flushes what is left.
``--memory`` skips SQLite (and durability) altogether.

Loading never fails because of one row: a row that is not JSON, does not fit its model
(pydantic checks the field types), or is a function the current validation refuses (a cron
that never fires, say) is moved to the ``set_aside`` table with the reason and logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

from pydantic import TypeAdapter, ValidationError

from .models import App, Event, Function, Item, Pause, Run, Step, to_doc

log = logging.getLogger("lab_support.devserver")
_KINDS = {"app": App, "function": Function, "event": Event, "run": Run, "item": Item,
          "pause": Pause}
_ADAPTERS = {kind: TypeAdapter(cls) for kind, cls in _KINDS.items()}
_STEP = TypeAdapter(Step)
# Small state under known prefixes, and the JSON type each must have to be usable.
_META_TYPES = {"dedup:": (int, float), "throttle:": (int, float), "ratelimit:": (int, float),
               "debounce:": dict, "batch:": dict, "cancellations": list}


class Store:
    def __init__(self, path: str | None) -> None:
        self.path = path
        self.apps: dict[str, App] = {}
        self.functions: dict[str, Function] = {}
        self.events: dict[str, Event] = {}
        self.runs: dict[str, Run] = {}
        self.runs_by_event: dict[str, list[str]] = defaultdict(list)
        self.items: dict[str, Item] = {}
        self.pauses: dict[str, Pause] = {}
        self.meta: dict[str, object] = {}   # small state: dedup keys, GCRA, buffers, clock
        self.set_aside: list[dict] = []     # rows that could not be loaded, with the reason
        self._dirty: dict[tuple[str, str], object] = {}
        self._changes = 0                   # mutations so far
        self._durable = 0                   # mutations up to this one are committed
        self._flushing: asyncio.Future | None = None
        self.commits = 0                    # transactions written (group commit shares them)
        self._db: sqlite3.Connection | None = None
        self._writer: ThreadPoolExecutor | None = None
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("CREATE TABLE IF NOT EXISTS docs (kind TEXT, id TEXT, doc TEXT, "
                             "PRIMARY KEY (kind, id))")
            self._db.execute("CREATE TABLE IF NOT EXISTS set_aside (kind TEXT, id TEXT, "
                             "doc TEXT, reason TEXT, at REAL)")
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lab-store")
            self._load()

    # -- loading ---------------------------------------------------------------------------
    def _load(self) -> None:
        assert self._db is not None
        rows = self._db.execute("SELECT kind, id, doc FROM docs ORDER BY rowid").fetchall()
        for kind, key, text in rows:
            try:
                self._load_row(kind, key, text)
            except Exception as exc:  # noqa: BLE001 - any bad row is set aside, never fatal
                self._set_aside(kind, key, text, _reason(exc))
        for run in sorted(self.runs.values(), key=lambda r: r.run_id):
            for eid in run.event_ids:
                self.runs_by_event[eid].append(run.run_id)

    def _load_row(self, kind, key, text) -> None:
        if not isinstance(key, str) or not isinstance(text, str):
            raise ValueError("the row's id or document is not text")
        doc = json.loads(text)
        if kind == "meta":
            wanted = next((t for p, t in _META_TYPES.items() if key.startswith(p)), None)
            if wanted and (isinstance(doc, bool) or not isinstance(doc, wanted)):
                raise ValueError(f"meta {key} is a {type(doc).__name__}, not usable here")
            self.meta[key] = doc
            return
        if kind not in _KINDS:
            raise ValueError(f"unknown kind {kind!r}")
        if not isinstance(doc, dict):
            raise ValueError(f"the document is a {type(doc).__name__}, not an object")
        obj = _ADAPTERS[kind].validate_python(doc)
        if kind == "run":
            obj.steps = {str(h): _STEP.validate_python(s) for h, s in obj.steps.items()}
            if not obj.events:
                raise ValueError("the run has no triggering event")
        elif kind == "function":
            from .sync import function_problems    # here: sync imports the models, not us
            problems = function_problems(obj.config)
            if problems:
                raise ValueError("the stored function is no longer valid: " + "; ".join(problems))
        getattr(self, _collection(kind))[key] = obj

    def _set_aside(self, kind, key, text, reason: str) -> None:
        log.warning("set aside stored %s %r: %s", kind, key, reason)
        self.set_aside.append({"kind": kind, "id": key, "reason": reason})
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("INSERT INTO set_aside (kind, id, doc, reason, at) "
                             "VALUES (?, ?, ?, ?, ?)", (kind, key, text, reason, time.time()))
            self._db.execute("DELETE FROM docs WHERE kind IS ? AND id IS ?", (kind, key))

    # -- writing ---------------------------------------------------------------------------
    def put(self, kind: str, key: str, obj) -> None:
        getattr(self, _collection(kind))[key] = obj
        self.touch(kind, key)

    def touch(self, kind: str, key: str) -> None:
        if self._db is not None:
            self._dirty[(kind, key)] = True
            self._changes += 1

    def delete(self, kind: str, key: str) -> None:
        getattr(self, _collection(kind)).pop(key, None)
        if self._db is not None:
            self._dirty[(kind, key)] = None
            self._changes += 1

    def set_meta(self, key: str, value) -> None:
        self.meta[key] = value
        self.touch("meta", key)

    def add_run(self, run: Run) -> None:
        self.put("run", run.run_id, run)
        for eid in run.event_ids:
            self.runs_by_event[eid].append(run.run_id)

    def flush(self) -> int:
        """Write every pending change now and wait for the commit (blocks the caller)."""
        snapshot = self._snapshot()
        if snapshot is None:
            return 0
        try:
            self._writer.submit(self._write, snapshot).result()
        except BaseException:
            self._redirty(snapshot)
            raise
        self._durable = max(self._durable, snapshot["upto"])
        return len(snapshot["keys"])

    async def flush_in_background(self) -> int:
        """Like ``flush``, but the event loop keeps running while the writer commits."""
        snapshot = self._snapshot()
        if snapshot is None:
            return 0
        try:
            await asyncio.wrap_future(self._writer.submit(self._write, snapshot))
        except BaseException:
            self._redirty(snapshot)
            raise
        self._durable = max(self._durable, snapshot["upto"])
        return len(snapshot["keys"])

    async def durable(self) -> None:
        """Return once every change made before this call is committed (group commit)."""
        if self._db is None:
            return
        target = self._changes
        while self._durable < target:
            if self._flushing is None:
                self._flushing = asyncio.ensure_future(self._flush_round())
            await asyncio.shield(self._flushing)

    async def _flush_round(self) -> None:
        try:
            await self.flush_in_background()
        finally:
            self._flushing = None

    def _snapshot(self) -> dict | None:
        if self._db is None or not self._dirty:
            return None
        dirty, self._dirty = self._dirty, {}
        upserts, deletes = [], []
        for (kind, key), alive in dirty.items():
            obj = getattr(self, _collection(kind)).get(key) if alive else None
            if obj is None:
                deletes.append((kind, key))
            else:
                doc = obj if kind == "meta" else to_doc(obj)
                upserts.append((kind, key, json.dumps(doc, default=str)))
        return {"upserts": upserts, "deletes": deletes, "keys": dirty, "upto": self._changes}

    def _write(self, snapshot: dict) -> None:
        """On the writer thread: one transaction, one fsync."""
        with self._db:
            self._db.execute("BEGIN")
            if snapshot["deletes"]:
                self._db.executemany("DELETE FROM docs WHERE kind=? AND id=?",
                                     snapshot["deletes"])
            if snapshot["upserts"]:
                self._db.executemany("INSERT OR REPLACE INTO docs (kind, id, doc) "
                                     "VALUES (?, ?, ?)", snapshot["upserts"])
        self.commits += 1

    def _redirty(self, snapshot: dict) -> None:
        """A write failed: its documents are pending again (newer changes win)."""
        for key, alive in snapshot["keys"].items():
            self._dirty.setdefault(key, alive)

    def reset_runs(self) -> None:
        """Forget events, runs, queue and pauses; keep apps and functions."""
        for kind in ("event", "run", "item", "pause"):
            for key in list(getattr(self, _collection(kind))):
                self.delete(kind, key)
        for key in list(self.meta):
            if key != "clock_offset_ms":
                self.meta.pop(key)
                if self._db is not None:
                    self._dirty[("meta", key)] = None
                    self._changes += 1
        self.runs_by_event.clear()

    def close(self) -> None:
        if self._db is not None:
            try:
                self.flush()
            finally:
                self._writer.shutdown(wait=True)
                self._db.close()
                self._db = None


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "document"
        return f"{where}: {first['msg']} ({exc.error_count()} problem(s))"
    return str(exc) or type(exc).__name__


def _collection(kind: str) -> str:
    return {"app": "apps", "function": "functions", "event": "events", "run": "runs",
            "item": "items", "pause": "pauses", "meta": "meta"}[kind]
