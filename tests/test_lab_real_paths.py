"""The real-dev-server code paths, exercised without the real server: a stand-in `inngest`
binary on PATH, and a client that reports itself as a real server."""

from __future__ import annotations

import datetime
import json
import os
import stat
import sys
import textwrap

import httpx
import inngest
import lab_helpers as h
import pytest

from lab_support.client import EngineClient, NotOnRealServer
from lab_support.lab_object import Lab

pytestmark = pytest.mark.timeout(240)


class RealLookingClient(EngineClient):
    """The embedded engine seen through the eyes of code that must work on a real server."""

    @property
    def kind(self) -> str:
        return "real"


@pytest.fixture
def fake_inngest_on_path(tmp_path, monkeypatch):
    """An `inngest` executable that turns `inngest dev --no-discovery -u URL --port P` into
    the embedded engine, so lab.start's binary path (host first, then `inngest dev -u`) runs."""
    script = tmp_path / "bin" / "inngest"
    script.parent.mkdir()
    script.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import os, sys
        args = sys.argv[1:]
        assert args[:2] == ["dev", "--no-discovery"], args
        url, port = args[args.index("-u") + 1], args[args.index("--port") + 1]
        os.execv(sys.executable, [sys.executable, "-m", "lab_support.devserver", "--memory",
                                  "--port", port, "-u", url])
        """))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("INNGEST_DEV", raising=False)
    return script


def test_inngest_binary_on_path_is_started_after_the_host(fake_inngest_on_path, tmp_path,
                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    lab = Lab()
    try:
        lab.start([h.order], quiet=True)
        assert lab.engine_choice.mode == "binary"
        assert lab._engine_proc.command()[:4] == [str(fake_inngest_on_path), "dev",
                                                  "--no-discovery", "-u"]
        assert os.environ["INNGEST_DEV"] == lab.api.url  # learner-made clients find it
        run = lab.wait(lab.send("lab/order", {"log_dir": str(tmp_path)}), timeout=60)
        assert run["status"] == "COMPLETED"
        url = lab.api.url
    finally:
        lab.stop()
    assert "INNGEST_DEV" not in os.environ
    with pytest.raises(httpx.HTTPError):
        httpx.get(url + "/health", timeout=1)


@pytest.fixture
def real_looking_lab(engine):
    lab = Lab()
    lab.start(h.FUNCTIONS, engine=engine.url, quiet=True)
    lab.api = RealLookingClient(engine.url)
    try:
        yield lab
    finally:
        lab.stop()


def test_clock_without_crons_refuses_and_chaos_goes_to_the_host(real_looking_lab):
    lab = real_looking_lab
    with pytest.raises(NotOnRealServer, match="lab.hours"):
        lab.clock.advance("1h")
    with pytest.raises(NotOnRealServer, match="no served function has a cron trigger"):
        lab.clock.to_next_timer()
    with pytest.raises(NotOnRealServer, match="only in the lab's embedded engine"):
        lab.clock.auto(False)
    assert lab.chaos.fail_step("order", "charge")["where"] == "host"
    lab.chaos.clear()
    now = lab.clock.now()
    assert abs(now - datetime.datetime.now(datetime.timezone.utc)) < datetime.timedelta(minutes=5)


cron_client = inngest.Inngest(app_id="labcron", is_production=False)


@cron_client.create_function(fn_id="weekly", trigger=inngest.TriggerCron(cron="0 9 * * 1"))
async def weekly(ctx: inngest.Context) -> str:
    return await ctx.step.run("report", lambda: ctx.event.data["scheduledAt"])


def test_clock_on_a_real_server_fires_cron_ticks_by_invoking(engine):
    lab = Lab()
    lab.start([weekly], engine=engine.url, quiet=True)
    lab.api = RealLookingClient(engine.url)
    try:
        start = lab.clock.now()
        first = lab.clock.to_next_timer()
        assert len(first["fired"]) == 1
        tick = datetime.datetime.fromisoformat(first["fired"][0]["scheduledAt"])
        assert tick.weekday() == 0 and (tick.hour, tick.minute) == (9, 0) and tick > start
        assert lab.clock.now() >= tick
        for _ in range(14):
            lab.clock.advance(datetime.timedelta(days=1))
        runs = lab.wait(lab.runs(function="weekly").ids, status="Completed", timeout=60)
        outputs = sorted(json.loads(r["output"]) for r in runs)
        assert len(outputs) == 3, outputs  # the first tick, then two more Mondays in 14 days
        assert all(datetime.datetime.fromisoformat(o).weekday() == 0 for o in outputs)
        assert len(set(outputs)) == 3
        with pytest.raises(ValueError, match="advance by less"):
            lab.clock.advance(datetime.timedelta(days=7 * 70))
    finally:
        lab.stop()


def test_a_lab_time_after_an_advance_still_windows_a_real_servers_runs(engine):
    """On a real server lab.clock.now() runs ahead of the server's wall clock after an
    advance; ``since=`` such a time must still find the runs queued from then on."""
    lab = Lab()
    lab.start([weekly], engine=engine.url, quiet=True)
    lab.api = RealLookingClient(engine.url)
    try:
        start = lab.clock.now()                # the shared engine has other tests' runs
        lab.clock.advance(datetime.timedelta(days=14))       # two Mondays: two ticks
        after_first = lab.clock.now()
        assert after_first > datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=13)
        assert len(lab.runs(function="weekly", since=start)) == 2
        assert len(lab.runs(function="weekly", since=after_first)) == 0
        lab.clock.advance(datetime.timedelta(days=14))       # two more
        later = lab.runs(function="weekly", since=after_first)
        assert len(later) == 2, [r["output"] for r in later]
        assert len(lab.runs(function="weekly", since=start, until=after_first)) == 2
        assert len(lab.events("inngest/function.invoked", since=after_first)) == 2
    finally:
        lab.stop()


def test_hours_are_scaled_on_a_real_server(real_looking_lab):
    lab = real_looking_lab
    assert lab.hours(4) == datetime.timedelta(seconds=40)
    assert lab.minutes(1) == datetime.timedelta(seconds=1)  # never below the SDK's 1 s
    lab.seconds_per_hour = 60
    assert lab.days(1) == datetime.timedelta(minutes=24)


def test_bulk_cancel_goes_run_by_run_on_a_real_server(real_looking_lab, engine):
    lab = real_looking_lab
    since = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=3650)
    runs = lab.wait(lab.send("lab/approval", [{"ticket": "r-0", "vip": True},
                                              {"ticket": "r-1", "vip": False}]),
                    status="running", timeout=60)
    cancelled = lab.bulk_cancel("approval", since=since, if_exp="event.data.vip == false")
    assert cancelled == [runs[1]["id"]]
    assert lab.run(runs[1]["id"])["status"] == "CANCELLED"
    assert lab.run(runs[0]["id"])["status"] == "RUNNING"
    lab.cancel(runs[0]["id"])


def test_embedded_only_cells_and_checks_on_a_real_server(real_looking_lab, capsys):
    lab = real_looking_lab
    assert lab.embedded_only("a 3-day sleep on the engine clock") is False
    said = capsys.readouterr().out
    assert "[real dev server] skipped here (embedded engine only)" in said
    assert "a 3-day sleep on the engine clock" in said
    with pytest.raises(NotOnRealServer, match="cannot be observed on a real dev server"):
        lab.require_embedded("A memo hit")
    with lab.check("memo hits show in the trace", points=2) as graded:
        lab.require_embedded("A memo hit in the replay's trace")
    assert graded.result.skipped and (graded.result.points, graded.result.max) == (0, 0)


def test_embedded_only_is_true_on_the_embedded_engine(engine):
    lab = Lab()
    try:
        lab.start(h.FUNCTIONS, engine=engine.url, quiet=True)
        assert lab.embedded_only("anything") is True
        lab.require_embedded("anything")  # no error
    finally:
        lab.stop()


def test_move_cursor_starts_the_lab_clock_later_and_the_worker_clock_url_reads_it(real_looking_lab):
    """A story that starts at 06:00 on a real server: the cursor moves, nothing fires, and
    the loopback URL the Worker reads (WORKER_CLOCK_URL) answers the same time."""
    from lab_support.schedule_clock import ScheduleClock

    lab = real_looking_lab
    target = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=2)).replace(
        microsecond=0)
    answer = lab.clock.move_cursor(target)
    assert answer["fired"] == [] and lab.clock.now() >= target
    since = lab.clock.now()
    event_id = lab.send("lab/order", {"customer": "after-the-move"})[0]
    # A lab time after the move still windows the server's wall-clock runs.
    run = lab.wait(event_id, timeout=60)
    assert run["id"] in lab.runs(function="order", since=since).ids
    clock = ScheduleClock(lab).start()
    try:
        reading = httpx.get(clock.url, timeout=5).json()
        assert datetime.datetime.fromisoformat(reading["now"]) >= target, reading
        assert reading["now_ms"] >= int(target.timestamp() * 1000)
    finally:
        clock.stop()
    with pytest.raises(RuntimeError, match="not serving"):
        clock.url
