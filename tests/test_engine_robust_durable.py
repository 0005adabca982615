"""Issue #9, findings 1, 2 and 7: what the engine acknowledged survives ``kill -9``, and what
it stored can never stop it from starting again.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import inngest
import pytest

from engine_helpers import make_client, send, serving, wait_run_for_event
from lab_support.devserver.models import Event, to_doc
from lab_support.devserver.store import Store
from lab_support.engine_process import EngineProcess

SENT = 200


@pytest.mark.slow
def test_acknowledged_events_survive_kill_9(tmp_path):
    """200 events sent by 8 concurrent senders, the engine killed (SIGKILL) right after the
    last 200 OK, restarted on the same state: every one of the 200 runs completes."""
    state = str(tmp_path / "engine")
    eng = EngineProcess(state_dir=state).start()
    client = make_client(eng, "durable")
    seen: set[str] = set()
    lock = threading.Lock()

    @client.create_function(fn_id="count", trigger=inngest.TriggerEvent(event="durable/one"))
    async def count(ctx: inngest.Context) -> str:
        token = await ctx.step.run("note", lambda: ctx.event.data["token"])
        with lock:
            seen.add(token)
        return token

    tokens = [f"t{n:03d}" for n in range(SENT)]
    try:
        with serving(eng, client, [count]):
            def sender(share: list[str]) -> set[int]:
                # Kept-alive connections: 200 sends take ~100 ms, all close to the kill.
                with httpx.Client(timeout=30) as http:
                    return {http.post(eng.url + "/e/key", json={
                        "name": "durable/one", "data": {"token": t}}).status_code
                            for t in share}
            with ThreadPoolExecutor(8) as pool:
                statuses = set().union(*pool.map(sender, [tokens[n::8] for n in range(8)]))
            eng.kill()                              # no shutdown, no last flush
            assert statuses == {200}
            eng = EngineProcess(port=eng.port, state_dir=state).start()

            def completed() -> int:
                runs = httpx.get(eng.url + "/lab/v1/runs", timeout=30,
                                 params={"function": "durable-count", "limit": 1000}).json()
                return sum(r["status"] == "Completed" for r in runs["data"])
            deadline = time.monotonic() + 120
            while (done := completed()) < SENT:
                assert time.monotonic() < deadline, \
                    f"only {done} of {SENT} acknowledged runs completed after the restart"
                time.sleep(0.2)
            assert done == SENT and seen == set(tokens)
    finally:
        eng.stop()


def test_concurrent_acknowledgements_share_commits(tmp_path):
    """Group commit: 100 writers waiting on ``durable`` at once cost far fewer than 100
    transactions, and every one of their documents is on disk afterwards."""
    path = str(tmp_path / "s.sqlite3")
    store = Store(path)

    async def writer(n: int) -> None:
        store.put("event", f"e{n}", Event(internal_id=f"e{n}", id=f"e{n}", name="gc/x",
                                          data={"n": n}, ts=1, received_at=1))
        await store.durable()

    async def main() -> None:
        await asyncio.gather(*(writer(n) for n in range(100)))

    asyncio.run(asyncio.wait_for(main(), 60))
    assert 1 <= store.commits < 50, store.commits
    store.close()
    reopened = Store(path)
    try:
        assert sorted(reopened.events) == sorted(f"e{n}" for n in range(100))
    finally:
        reopened.close()


def test_a_failed_commit_is_not_acknowledged_and_is_retried(tmp_path):
    store = Store(str(tmp_path / "s.sqlite3"))
    real_write = store._write
    failures = []

    def failing_write(snapshot):
        if not failures:
            failures.append(1)
            raise sqlite3.OperationalError("disk I/O error")
        real_write(snapshot)

    store._write = failing_write
    store.put("event", "e1", Event(internal_id="e1", id="e1", name="x", data={}, ts=1,
                                   received_at=1))

    async def ack():
        await store.durable()

    with pytest.raises(sqlite3.OperationalError):
        asyncio.run(ack())
    asyncio.run(ack())                   # the document is pending again and now committed
    store.close()
    reopened = Store(str(tmp_path / "s.sqlite3"))
    assert "e1" in reopened.events
    reopened.close()


def test_unloadable_rows_are_set_aside_and_startup_never_fails(tmp_path):
    """Hand-corrupted rows, the function finding 1 used to leave behind (a cron that never
    fires) and the clock offset finding 2 used to leave behind: the engine starts, logs
    each one, moves it to ``set_aside`` and runs a normal event to completion."""
    state = tmp_path / "engine"
    eng = EngineProcess(state_dir=str(state)).start()
    client = make_client(eng, "survivor")

    @client.create_function(fn_id="ok", trigger=inngest.TriggerEvent(event="survivor/go"))
    async def ok(ctx: inngest.Context) -> str:
        return "still fine"

    try:
        with serving(eng, client, [ok]):
            assert wait_run_for_event(eng, send(eng, "survivor/go"))["status"] == "Completed"
            eng.stop()
            db = sqlite3.connect(state / "engine.sqlite3")
            good_fn = json.loads(db.execute("SELECT doc FROM docs WHERE kind='function'")
                                 .fetchone()[0])
            poisoned = dict(good_fn, slug="survivor-never", id="never",
                            config=dict(good_fn["config"], id="survivor-never",
                                        triggers=[{"cron": "0 0 31 2 *"}]))
            event = to_doc(Event(internal_id="e", id="e", name="n", data={}, ts=1,
                                 received_at=1))
            rows = [("run", "01J00000000000000000000000", "{not json"),
                    ("function", "survivor-never", json.dumps(poisoned)),
                    ("item", "call-x", json.dumps({"id": "call-x", "run_id": "r", "kind": "call",
                                                   "at": "soon"})),
                    ("event", "e-list", "[]"),
                    ("event", "e-typed", json.dumps(dict(event, ts="yesterday"))),
                    ("pause", "p", json.dumps({"id": "p"})),
                    ("meta", "dedup:x:y", '"tomorrow"'),
                    ("widget", "w", "{}")]
            with db:
                db.executemany("INSERT OR REPLACE INTO docs VALUES (?, ?, ?)", rows)
                db.execute("INSERT OR REPLACE INTO docs VALUES ('meta', 'clock_offset_ms', ?)",
                           (str(10 ** 18),))
            db.close()

            eng = EngineProcess(port=eng.port, state_dir=str(state)).start()
            output = eng.output()
            assert output.count("set aside stored") == len(rows), output
            assert "ignored the stored clock offset" in output
            clock = httpx.get(eng.url + "/lab/v1/clock").json()
            assert clock["offset_ms"] < 10 ** 15
            slugs = [f["slug"] for f in httpx.post(eng.url + "/v0/gql", json={
                "query": "{ functions { slug } }"}).json()["data"]["functions"]]
            assert slugs == ["survivor-ok"]
            run = wait_run_for_event(eng, send(eng, "survivor/go"))
            assert run["status"] == "Completed" and run["output"] == "still fine"
            eng.stop()
            db = sqlite3.connect(state / "engine.sqlite3")
            aside = db.execute("SELECT kind, id, reason FROM set_aside").fetchall()
            db.close()
            assert {(k, i) for k, i, _ in aside} == {(k, i) for k, i, _ in rows}
            reasons = {i: r for _, i, r in aside}
            assert "never fires" in reasons["survivor-never"]
            assert "at" in reasons["call-x"] and "integer" in reasons["call-x"]
            # A second start finds nothing left to set aside.
            eng = EngineProcess(port=eng.port, state_dir=str(state)).start()
            assert "set aside" not in eng.output()
    finally:
        eng.stop()
