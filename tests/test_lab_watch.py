"""lab.watch against the embedded engine: each attempt of a retried step is its own segment,
and with a concurrency key the lower panel and caption count executing steps per key (with
the engine's own count from lab.stats, which also sees calls queued for a slot)."""

from __future__ import annotations

import capability_helpers as cap
import pytest

from lab_support.lab_object import Lab
from lab_support.timeline import segments
from lab_support.watching import caption

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def lab(fresh_engine):
    the_lab = Lab()
    the_lab.start(cap.FUNCTIONS, engine=fresh_engine.url, quiet=True)
    try:
        yield the_lab
    finally:
        the_lab.stop(quiet=True)


def test_a_retried_step_shows_every_attempt(lab):
    run = lab.wait(lab.send("cap/pipeline", {"flaky": True}), timeout=120)
    (watched,) = lab.watch(run["id"], timeout=60)
    transform = [s for s in segments(watched) if s.step == "transform"]
    assert [(s.attempt, s.kind) for s in transform] == [(1, "retried"), (2, "retried"), (3, "ok")]
    assert transform[0].end <= transform[1].start, "attempts are apart: the backoff"
    assert "transform (run" in caption([watched])
    assert "attempt 1 retried → attempt 2 retried → attempt 3 ok" in caption([watched])


def test_key_lanes_count_executing_steps_per_customer(lab):
    lab.chaos.slow_step("send-email", "deliver", "8s")   # each delivery holds its slot 8 s
    ids = lab.send("cap/email", [{"customer_id": f"c-{n % 4}"} for n in range(12)])
    lab.wait(ids, timeout=120)
    lanes = lab.watch("send-email", lane="event.data.customer_id", timeout=60)
    assert sorted({lane.lane for lane in lanes}) == ["c-0", "c-1", "c-2", "c-3"]
    stats = lab.stats("send-email", key="event.data.customer_id")
    text = caption(lanes, stats)
    assert f"engine count (lab.stats): peak {stats.peak}" in text
    assert "per event.data.customer_id: max 2" in text, "the per-key cap, as the engine saw it"
    from lab_support.timeline import executing_by_lane, peak

    now = lab.clock.now()
    assert max(peak(series) for series in executing_by_lane(lanes, now).values()) <= 2
    lab.chaos.clear()
