"""Engine state: in memory for speed, persisted to SQLite so a restart resumes.

Every mutation marks a document dirty; ``flush`` writes the dirty set in one transaction
(the scheduler calls it every few ms, and on shutdown). ``--memory`` skips SQLite.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections import defaultdict

from .models import App, Event, Function, Item, Pause, Run, Step, from_doc, to_doc

_KINDS = {"app": App, "function": Function, "event": Event, "run": Run, "item": Item,
          "pause": Pause}


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
        self._dirty: dict[tuple[str, str], object] = {}
        self._db: sqlite3.Connection | None = None
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS docs (kind TEXT, id TEXT, doc TEXT, "
                             "PRIMARY KEY (kind, id))")
            self._load()

    # -- loading ---------------------------------------------------------------------------
    def _load(self) -> None:
        assert self._db is not None
        for kind, key, text in self._db.execute("SELECT kind, id, doc FROM docs ORDER BY rowid"):
            doc = json.loads(text)
            if kind == "meta":
                self.meta[key] = doc
            elif kind == "run":
                run = from_doc(Run, doc)
                run.steps = {h: from_doc(Step, s) for h, s in run.steps.items()}
                self.runs[key] = run
            elif kind in _KINDS:
                getattr(self, _collection(kind))[key] = from_doc(_KINDS[kind], doc)
        for run in sorted(self.runs.values(), key=lambda r: r.run_id):
            for eid in run.event_ids:
                self.runs_by_event[eid].append(run.run_id)

    # -- writing ---------------------------------------------------------------------------
    def put(self, kind: str, key: str, obj) -> None:
        getattr(self, _collection(kind))[key] = obj
        self.touch(kind, key)

    def touch(self, kind: str, key: str) -> None:
        if self._db is not None:
            self._dirty[(kind, key)] = True

    def delete(self, kind: str, key: str) -> None:
        getattr(self, _collection(kind)).pop(key, None)
        if self._db is not None:
            self._dirty[(kind, key)] = None

    def set_meta(self, key: str, value) -> None:
        self.meta[key] = value
        self.touch("meta", key)

    def add_run(self, run: Run) -> None:
        self.put("run", run.run_id, run)
        for eid in run.event_ids:
            self.runs_by_event[eid].append(run.run_id)

    def flush(self) -> int:
        if self._db is None or not self._dirty:
            return 0
        dirty, self._dirty = self._dirty, {}
        upserts, deletes = [], []
        for (kind, key), alive in dirty.items():
            obj = getattr(self, _collection(kind)).get(key) if alive else None
            if obj is None:
                deletes.append((kind, key))
            else:
                doc = obj if kind == "meta" else to_doc(obj)
                upserts.append((kind, key, json.dumps(doc, default=str)))
        with self._db:
            self._db.execute("BEGIN")
            if deletes:
                self._db.executemany("DELETE FROM docs WHERE kind=? AND id=?", deletes)
            if upserts:
                self._db.executemany("INSERT OR REPLACE INTO docs (kind, id, doc) "
                                     "VALUES (?, ?, ?)", upserts)
        return len(dirty)

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
        self.runs_by_event.clear()

    def close(self) -> None:
        if self._db is not None:
            self.flush()
            self._db.close()
            self._db = None


def _collection(kind: str) -> str:
    return {"app": "apps", "function": "functions", "event": "events", "run": "runs",
            "item": "items", "pause": "pauses", "meta": "meta"}[kind]
