"""M7 and M20: ``lab.model``, an offline model endpoint that behaves like a real one under load
(a requests-per-minute limit on the engine clock, scripted failures, usage), shared by the
Agents SDK inside ``step.run`` and by ``step.ai.infer``; and the model line in ``lab.trace``."""

from __future__ import annotations

import asyncio
import os

import inngest
import openai
import pytest
from agents import Agent, RunConfig, Runner
from inngest.experimental.ai.openai import Adapter

from chat_agent.models import get_model
from lab_support import tracing
from lab_support.lab_object import Lab
from lab_support.model_gate import ModelGate

pytestmark = pytest.mark.timeout(300)

client = inngest.Inngest(app_id="modeltest", is_production=False)


async def _agent_call(prompt: str) -> dict:
    """One Agents SDK run on whatever model chat_agent picks (lab.model's URL here)."""
    result = await Runner.run(Agent(name="helper", instructions="Answer briefly.",
                                    model=get_model()), prompt,
                              run_config=RunConfig(tracing_disabled=True))
    usage = result.context_wrapper.usage
    return {"text": result.final_output,
            "usage": {"model": "offline-lab-model", "requests": usage.requests,
                      "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}}


@client.create_function(fn_id="ask-twice", trigger=inngest.TriggerEvent(event="model/ask"),
                        retries=6)
async def ask_twice(ctx: inngest.Context) -> dict:
    first = await ctx.step.run("agent", _agent_call, "Hello")
    inferred = await ctx.step.ai.infer(
        "infer", adapter=Adapter(auth_key="offline", base_url=ctx.event.data["model_url"],
                                 model="offline-lab-model"),
        body={"messages": [{"role": "user", "content": "Hello again"}]})
    again = await ctx.step.run("agent-again", _agent_call, "Hello a third time")
    return {"first": first["text"], "inferred": inferred["choices"][0]["message"]["content"],
            "again": again["text"]}


@client.create_function(fn_id="infer-only", trigger=inngest.TriggerEvent(event="model/infer"))
async def infer_only(ctx: inngest.Context) -> str:
    answer = await ctx.step.ai.infer(
        "infer", adapter=Adapter(auth_key="offline", base_url=ctx.event.data["model_url"],
                                 model="offline-lab-model"),
        body={"messages": [{"role": "user", "content": "Hi"}]})
    return answer["choices"][0]["message"]["content"]


@pytest.fixture(scope="module")
def lab(engine):
    before = os.environ.get("CHAT_AGENT_MODEL_URL")
    the_lab = Lab()
    the_lab.start([ask_twice, infer_only], engine=engine.url, quiet=True)
    try:
        yield the_lab
    finally:
        the_lab.stop()
        assert os.environ.get("CHAT_AGENT_MODEL_URL") == before  # put back by lab.stop()


@pytest.fixture
def model(lab):
    lab.model.reset()
    yield lab.model
    lab.model.reset()


def _openai(lab, timeout: float = 30) -> openai.OpenAI:
    return openai.OpenAI(base_url=lab.model.url, api_key="x", max_retries=0, timeout=timeout)


def _ask(api) -> str:
    return api.chat.completions.create(model="offline-lab-model",
                                       messages=[{"role": "user", "content": "hi"}]
                                       ).choices[0].message.content


# ---------------------------------------------------------------- the limiter, on its own

def test_sliding_window_on_an_injected_clock():
    now = [1_000_000]
    gate = ModelGate(lambda: now[0])
    gate.limit(3)
    assert [gate.decide("m", "c", now[0]) for _ in range(3)] == [None, None, None]
    now[0] += 20_000
    status, headers = gate.decide("m", "c", now[0])
    assert status == 429 and headers["retry-after"] == "40"  # the first leaves at +60 s
    now[0] += 40_000
    assert gate.decide("m", "c", now[0]) is None
    gate.fail(2, 503)
    assert [gate.decide("m", "c", now[0])[0] for _ in range(2)] == [503, 503]
    usage = gate.usage()
    # Refusals are recorded when decided; answered requests when the endpoint reports usage.
    assert (usage.requests, usage.rate_limited, usage.errors) == (1 + 2, 1, 2)
    for bad in (0, -1, True, 2.5):
        with pytest.raises(ValueError, match="rpm"):
            gate.limit(bad)
    with pytest.raises(ValueError, match="status"):
        gate.fail(1, 404)
    with pytest.raises(ValueError, match="times"):
        gate.fail(0, 429)


def test_a_scaled_minute_shortens_the_window():
    # lab.model.limit(rpm, minute=6): a notebook that scales its throttle periods on a real
    # dev server scales the model's minute with them
    now = [1_000_000]
    gate = ModelGate(lambda: now[0])
    gate.limit(2, window_ms=6_000)
    assert [gate.decide("m", "c", now[0]) for _ in range(2)] == [None, None]
    now[0] += 2_000
    status, headers = gate.decide("m", "c", now[0])
    assert status == 429 and headers["retry-after"] == "4"
    now[0] += 4_000
    assert gate.decide("m", "c", now[0]) is None
    with pytest.raises(ValueError, match="at least 1 s"):
        gate.limit(2, window_ms=500)
    gate.reset()
    assert gate.window_ms == 60_000


# ---------------------------------------------------------------- through HTTP, engine clock

def test_30_rpm_answers_429_to_the_31st_request_and_again_after_an_engine_minute(lab, model):
    model.limit(rpm=30)
    api = _openai(lab)
    start = lab.clock.now()
    for _ in range(30):
        assert _ask(api).startswith("[offline lab model]")
    with pytest.raises(openai.RateLimitError) as refused:
        _ask(api)
    assert (lab.clock.now() - start).total_seconds() < 60  # all within one engine minute
    headers = refused.value.response.headers
    assert 1 <= int(headers["retry-after"]) <= 60
    assert headers["x-ratelimit-limit-requests"] == "30"
    assert refused.value.body["code"] == "rate_limit_exceeded"
    lab.clock.advance("61s")  # virtual: no real minute passes
    assert _ask(api).startswith("[offline lab model]")
    usage = model.usage()
    assert (usage.requests, usage.ok, usage.rate_limited) == (32, 31, 1)
    assert usage.rows[0]["caller"] == "openai-python" and usage.tokens_out > 0


def test_step_run_and_ai_infer_share_one_limit(lab, model):
    model.limit(rpm=2)
    run = lab.wait(lab.send("model/ask", {"model_url": lab.model.url}), timeout=240)
    assert run["status"] == "COMPLETED", run
    usage = model.usage()
    callers = {r["caller"]: r for r in usage.rows}
    assert callers["agents-sdk"]["ok"] == 2 and callers["http"]["ok"] == 1  # step.run, ai.infer
    # Two admitted requests (agent, infer) filled the minute: the third call was refused until
    # the engine's retry backoff moved the virtual clock past the window.
    assert callers["agents-sdk"]["429s"] >= 1 and usage.rate_limited >= 1
    trace = lab.trace(run["id"]).set_index("step")
    assert trace.loc["agent-again", "attempts"] >= 2
    assert "×429 retried" in trace.loc["agent-again", "model"]
    assert trace.loc["agent", "model"].startswith("offline-lab-model · 1 calls · ")
    assert "in /" in trace.loc["infer", "model"] and trace.loc["infer", "op"] == "AI_GATEWAY"


def test_scripted_5xx_and_timeouts_are_retried(lab, model):
    model.fail(times=2, status=503)
    run = lab.wait(lab.send("model/infer", {"model_url": lab.model.url}), timeout=120)
    assert run["status"] == "COMPLETED"
    trace = lab.trace(run["id"]).set_index("step")
    # (The embedded engine lists an ai.infer step's failed attempts, not its last good one.)
    assert trace.loc["infer", "attempts"] >= 2 and trace.loc["infer", "status"] == "COMPLETED"
    usage = model.usage()
    assert (usage.requests, usage.ok, usage.errors) == (3, 1, 2)
    model.fail(times=1, status="timeout", hold=1.5)
    with pytest.raises(openai.APITimeoutError):
        _ask(_openai(lab, timeout=0.3))
    assert _ask(_openai(lab)).startswith("[offline lab model]")
    assert not model.gate.pending_failures()


def test_a_real_key_means_the_limiter_only_sees_direct_calls(lab, model, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-used")
    model.limit(rpm=5)
    assert "real OpenAI model" in capsys.readouterr().out
    assert get_model() == "gpt-4.1-mini"  # the Worker would not call lab.model at all


# ---------------------------------------------------------------- the trace's model line

def test_model_line_reads_ai_infer_and_step_usage():
    infer = {"model": "gpt-4o", "usage": {"prompt_tokens": 812, "completion_tokens": 95}}
    assert tracing.model_line(infer) == "gpt-4o · 812 in / 95 out tokens"
    agent = '{"draft": "…", "usage": {"model": "offline-lab-model", "requests": 4, ' \
            '"input_tokens": 4849, "output_tokens": 278}}'
    errors = ["RateLimitError: Error code: 429 - rate_limit_exceeded", "ValueError: boom"]
    assert tracing.model_line(agent, errors) == \
        "offline-lab-model · 4 calls · 4849 in / 278 out tokens · 1×429 retried"
    assert tracing.model_line({"customer": "c-1"}) == ""
    assert tracing.model_line("plain text") == ""


def test_the_model_endpoint_streams_for_the_agents_sdk(lab, model):
    answer = asyncio.run(asyncio.wait_for(_agent_call("Stream me"), 60))
    assert answer["text"].startswith("[offline lab model]")
    assert answer["usage"]["requests"] == 1 and answer["usage"]["output_tokens"] > 0
    assert model.usage().rows[0]["caller"] == "agents-sdk"
