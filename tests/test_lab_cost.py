"""M9 (the cost side): monthly cost per plan with overage, from measured executions and model
tokens; and memoization's price (course Concept 7) measured on a wrapped/unwrapped run pair."""

from __future__ import annotations

from collections import Counter

import inngest
import openai
import pytest

from lab_support import cost
from lab_support.lab_object import Lab

pytestmark = pytest.mark.timeout(300)

# The course's PRIMM numbers: load-customer $0.01, run-agent $0.20, save-draft $0.005.
UNIT_USD = {"load-customer": 0.01, "run-agent": 0.20, "save-draft": 0.005}
EXECUTED: Counter = Counter()  # (tag, unit) -> how often the unit's code really ran
MODEL_URL: dict[str, str] = {}

client = inngest.Inngest(app_id="costtest", is_production=False)


def load_customer(tag: str) -> dict:
    EXECUTED[(tag, "load-customer")] += 1
    return {"id": "c-4429"}


def run_agent(tag: str) -> str:
    """The expensive model call: through lab.model, so a scripted 429 fails it for real."""
    EXECUTED[(tag, "run-agent")] += 1
    api = openai.OpenAI(base_url=MODEL_URL["url"], api_key="x", max_retries=0, timeout=30)
    return api.chat.completions.create(model="offline-lab-model", messages=[
        {"role": "user", "content": "Customer id: c-4429\nEmail body:\nWhere is my refund?"}]
    ).choices[0].message.content


def save_draft(tag: str) -> str:
    EXECUTED[(tag, "save-draft")] += 1
    return "saved"


@client.create_function(fn_id="wrapped", trigger=inngest.TriggerEvent(event="cost/wrapped"))
async def wrapped(ctx: inngest.Context) -> str:
    tag = ctx.event.data["tag"]
    await ctx.step.run("load-customer", load_customer, tag)
    await ctx.step.run("run-agent", run_agent, tag)
    return await ctx.step.run("save-draft", save_draft, tag)


@client.create_function(fn_id="unwrapped", trigger=inngest.TriggerEvent(event="cost/unwrapped"))
async def unwrapped(ctx: inngest.Context) -> str:
    tag = ctx.event.data["tag"]
    load_customer(tag)  # outside step.run: runs again on every re-entry of the function
    await ctx.step.run("run-agent", run_agent, tag)
    return save_draft(tag)


@pytest.fixture(scope="module")
def lab(engine):
    the_lab = Lab()
    the_lab.start([wrapped, unwrapped], engine=engine.url, quiet=True)
    MODEL_URL["url"] = the_lab.model.url
    try:
        yield the_lab
    finally:
        the_lab.stop()


def _executed(tag: str) -> dict[str, int]:
    return {unit: EXECUTED[(tag, unit)] for unit in UNIT_USD if EXECUTED[(tag, unit)]}


def _measure(lab, variant: str, retried: bool) -> tuple[dict, dict]:
    tag = f"{variant}-{'retried' if retried else 'clean'}"
    if retried:
        lab.model.fail(times=1, status=429)  # the agent step's first attempt is rate limited
    run = lab.wait(lab.send(f"cost/{variant}", {"tag": tag}), timeout=120)
    assert run["status"] == "COMPLETED", run
    return _executed(tag), run


def test_the_course_s_4_50_waste_from_a_measured_run_pair(lab):
    lab.model.reset()
    w_clean, _ = _measure(lab, "wrapped", retried=False)
    u_clean, u_run = _measure(lab, "unwrapped", retried=False)
    w_retried, w_run = _measure(lab, "wrapped", retried=True)
    u_retried, _ = _measure(lab, "unwrapped", retried=True)
    # What really executed (a hand count of inngest-py's re-entries):
    assert w_clean == {"load-customer": 1, "run-agent": 1, "save-draft": 1}
    assert w_retried == {"load-customer": 1, "run-agent": 2, "save-draft": 1}
    assert u_clean == {"load-customer": 2, "run-agent": 1, "save-draft": 1}
    assert u_retried == {"load-customer": 3, "run-agent": 2, "save-draft": 1}
    assert lab.trace(w_run["id"]).set_index("step").loc["run-agent", "attempts"] == 2
    # The units the unwrapped version runs outside step.run: the ones its trace lacks.
    traced = set(lab.trace(u_run["id"])["step"])
    outside = set(UNIT_USD) - traced
    assert outside == {"load-customer", "save-draft"}

    waste = cost.retry_waste(unit_usd=UNIT_USD, unwrapped_units=outside,
                             wrapped_clean=w_clean, wrapped_retried=w_retried,
                             unwrapped_clean=u_clean, unwrapped_retried=u_retried,
                             failure_rate=0.30, volume=1000)
    assert waste.course_model_usd == pytest.approx(4.50)  # 1,000 × 30 % × ($0.01 + $0.005)
    # What inngest-py really re-pays: code before the retried step reruns on each re-entry
    # (load-customer), code after it runs once (save-draft never reruns).
    assert waste.repaid_per_retry == {"load-customer": 1, "run-agent": 0, "save-draft": 0}
    assert waste.retry_usd == pytest.approx(3.00)
    assert waste.total_usd == pytest.approx(13.00)  # + $0.01 per run even without failures
    assert "$4.50" in waste.text() and "$3.00" in waste.text()
    assert lab.model.usage().rate_limited == 2


def test_monthly_cost_per_plan_with_overage():
    assert cost.executions_per_run(5) == 6  # "a run with five steps uses six executions"
    pro = cost.monthly_cost(runs_per_day=1000, executions_per_run=6, plan_key="pro")
    assert pro.executions == 180_000 and pro.total_usd == 75.0  # within 1M
    big = cost.monthly_cost(runs_per_day=10_000, executions_per_run=7.5, plan_key="pro")
    assert big.executions == 2_250_000 and big.overage_usd == 100.0  # 1.25M over: 2 blocks
    hobby = cost.monthly_cost(runs_per_day=200, executions_per_run=6, plan_key="hobby")
    assert hobby.fits and hobby.total_usd == 0.0  # 36,000 executions
    over = cost.monthly_cost(runs_per_day=1000, executions_per_run=6, plan_key="hobby")
    assert not over.fits and over.total_usd is None and "50,000" in over.note
    business = cost.monthly_cost(runs_per_day=1000, executions_per_run=6, plan_key="business")
    assert business.total_usd is None and "sales" in business.note
    tokens = cost.monthly_cost(runs_per_day=1000, executions_per_run=6, model_calls_per_run=4,
                               tokens_per_call=1500, price_per_1k_tokens=0.005)
    assert tokens.model_usd == pytest.approx(900.0) and tokens.total_usd == pytest.approx(975.0)
    assert cost.cheapest(cost.cost_by_plan(runs_per_day=100, executions_per_run=6)).plan.key \
        == "hobby"
    for bad in ({"runs_per_day": -1}, {"runs_per_day": float("nan")},
                {"executions_per_run": 0.5}, {"plan_key": "platinum"}):
        with pytest.raises(ValueError):
            cost.monthly_cost(**{"runs_per_day": 10, "executions_per_run": 6, **bad})


def test_measured_executions_and_tokens_feed_the_estimate(lab):
    runs = {"runs": 4, "steps": 10, "attempts": 12, "executions": 16, "by_function": {}}
    usage = lab.model.usage()
    found = cost.measured(runs, usage)
    assert found.executions_per_run == 4.0 and found.failure_rate == pytest.approx(0.2)
    assert found.model_calls_per_run == pytest.approx(usage.ok / 4)
    assert found.tokens_per_call == pytest.approx(usage.tokens / usage.ok)
    assert cost.measured({"runs": 0, "steps": 0, "attempts": 0, "executions": 0}) is None
    with pytest.raises(ValueError, match="attempts"):
        cost.measured({"runs": 1, "steps": 1, "executions": 2})


def test_lab_cost_headless_prints_every_plan(lab, capsys):
    estimate = lab.cost({"runs": 4, "steps": 10, "attempts": 12, "executions": 16},
                        tokens=1200, runs_per_day=1000, price_per_1k_tokens=0.01)
    text = capsys.readouterr().out
    assert "measured: 4 runs" in text and "Hobby (free)" in text and "Pro:" in text
    assert estimate.plan.key == "pro" and estimate.executions == 1000 * 30 * 4.0
    assert estimate.model_usd == pytest.approx(1000 * 30 * 1200 / 1000 * 0.01)


def test_the_widget_draws_sliders_and_a_plot(monkeypatch):
    shown = []
    monkeypatch.setattr("lab_support.display.in_kernel", lambda: True)
    monkeypatch.setattr("lab_support.display.show",
                        lambda **kw: shown.append(kw))
    monkeypatch.setattr("lab_support.display.show_figure",
                        lambda fig, **kw: shown.append({"figure": fig}))
    estimate = cost.cost_widget({"runs": 2, "steps": 6, "attempts": 6, "executions": 8},
                                tokens=3000)
    bundle = next(s for s in shown if "widget" in s)
    assert "<img" in bundle["html_text"] and "Hobby (free)" in bundle["html_text"]
    assert len(bundle["widget"].children) == 7  # six controls and the output area
    assert any("figure" in s for s in shown)  # the live plot was drawn once
    assert estimate.executions == 1000 * 30 * 4.0
