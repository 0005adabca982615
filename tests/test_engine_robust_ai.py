"""Issue #9, the AI-gateway half of finding 6: the engine makes the model call for
``step.ai.infer`` itself, so what the provider answers is bounded like an app's answer.

An OpenAI-compatible stub on loopback answers each request by the mode in its path (a 50 MB
stream, NaN, invalid JSON, ...); a real SDK function calls ``step.ai.infer`` against it. An
answer the engine cannot use fails the step with the reason, which the run's output carries
through REST, and nothing stored breaks a later REST, GraphQL or dashboard request.
"""

from __future__ import annotations

import json

import httpx
import inngest
import pytest
from fastapi import FastAPI
from fastapi.responses import Response, StreamingResponse
from inngest.experimental.ai import openai as ai_openai

from engine_helpers import make_client, run, send, serving, trace, wait_run_for_event
from lab_support.devserver import limits
from lab_support.devserver.ai_gateway import call_timeout
from lab_support.host import ThreadedHost

MIB = 1024 * 1024


def _completion(content: str) -> bytes:
    return json.dumps({"id": "c1", "choices": [{"index": 0, "message": {
        "role": "assistant", "content": content}}]}).encode()


def _exactly(size: int) -> bytes:
    """A completion whose body is exactly ``size`` bytes."""
    return _completion("x" * (size - len(_completion(""))))


class ModelStub:
    """/<mode>/v1/chat/completions answers by mode; ``sent`` counts MiB chunks streamed."""

    def __init__(self) -> None:
        self.sent: dict[str, int] = {}
        app = FastAPI()

        @app.post("/{mode}/v1/chat/completions")
        async def completions(mode: str):
            if mode in ("huge", "huge-error"):
                def stream():            # 50 MB if anyone read it all; no Content-Length
                    yield b'{"choices": [{"message": {"content": "'
                    for _ in range(50):
                        self.sent[mode] = self.sent.get(mode, 0) + 1
                        yield b"x" * MIB
                    yield b'"}}]}'
                return StreamingResponse(stream(), media_type="application/json",
                                         status_code=500 if mode == "huge-error" else 200)
            if mode == "declared-huge":
                return Response(b"x" * (limits.AI_REPLY_MAX_BYTES + 1),
                                media_type="application/json")
            bodies = {
                "nan": b'{"choices": [{"message": {"content": "hi"}}], "score": NaN}',
                "infinity": b'{"choices": [{"message": {"content": "hi"}}], "p": -Infinity}',
                "overflow": b'{"choices": [{"message": {"content": "hi"}}], "p": 1e999}',
                "invalid": b'{"choices": [{"message": ',
                "at-limit": _exactly(limits.AI_REPLY_MAX_BYTES),
                "ok": _completion("hello from the stub"),
            }
            return Response(bodies[mode], media_type="application/json")

        self.host = ThreadedHost(app)

    def __enter__(self) -> ModelStub:
        self.host.start()
        return self

    def __exit__(self, *exc) -> None:
        self.host.stop()


@pytest.fixture(scope="module")
def served(engine):
    """The stub and a synced app whose ``ask`` function infers from base_url = event data."""
    client = make_client(engine, "ai-robust")

    @client.create_function(fn_id="ask", retries=0,
                            trigger=inngest.TriggerEvent(event="ai-robust/ask"))
    async def ask(ctx: inngest.Context) -> object:
        adapter = ai_openai.Adapter(auth_key="k", model="stub-model",
                                    base_url=ctx.event.data["base_url"])
        answer = await ctx.step.ai.infer("ask", adapter=adapter, body={
            "messages": [{"role": "user", "content": "hi"}]})
        content = answer["choices"][0]["message"]["content"]
        return len(content) if len(content) > 100 else content

    with ModelStub() as stub, serving(engine, client, [ask]):
        yield stub


def _ask(engine, base_url: str) -> dict:
    return wait_run_for_event(engine, send(engine, "ai-robust/ask", {"base_url": base_url}),
                              timeout=60)


def _failed_with(engine, base_url: str, *phrases: str) -> dict:
    result = _ask(engine, base_url)
    shown = json.dumps(result.get("output"))
    assert result["status"] == "Failed" and all(p in shown for p in phrases), result
    _later_requests_work(engine, result["run_id"])
    return result


def _later_requests_work(engine, run_id: str) -> None:
    """REST, the GraphQL trace and the dashboard's run list still answer for this run."""
    r = httpx.get(f"{engine.url}/v1/runs/{run_id}", timeout=10)
    assert r.status_code == 200, r.text
    json.loads(r.text, parse_constant=lambda name: pytest.fail(f"{name} in a REST answer"))
    spans = trace(engine, run_id)["trace"]["childrenSpans"]
    assert any(s["stepOp"] == "AI_GATEWAY" for s in spans), spans
    r = httpx.get(engine.url + "/lab/v1/runs", params={"function": "ai-robust-ask"}, timeout=10)
    assert r.status_code == 200 and run_id in r.text, r.text[:500]


def test_a_usable_answer_is_returned(engine, served):
    result = _ask(engine, served.host.url + "/ok/v1")
    assert result["status"] == "Completed" and result["output"] == "hello from the stub", result


def test_an_answer_at_the_size_limit_is_used(engine, served):
    result = _ask(engine, served.host.url + "/at-limit/v1")
    expected = limits.AI_REPLY_MAX_BYTES - len(_completion(""))
    assert result["status"] == "Completed" and result["output"] == expected, result


@pytest.mark.parametrize("mode", ["huge", "huge-error"])
def test_a_50_mb_answer_fails_the_step_and_is_not_read_in_full(engine, served, mode):
    _failed_with(engine, f"{served.host.url}/{mode}/v1", "AIGatewayError",
                 f"larger than the limit of {limits.AI_REPLY_MAX_BYTES} bytes")
    assert served.sent[mode] < 50, "the engine stopped reading, so the stub stopped sending"


def test_a_declared_oversized_answer_fails_the_step(engine, served):
    _failed_with(engine, served.host.url + "/declared-huge/v1", "larger than the limit")


@pytest.mark.parametrize("mode, shown", [
    ("nan", "NaN"), ("infinity", "Infinity"), ("overflow", "too large for a 64-bit float")])
def test_a_non_finite_answer_fails_the_step(engine, served, mode, shown):
    _failed_with(engine, f"{served.host.url}/{mode}/v1", "AIGatewayError", shown)


def test_an_answer_that_is_not_json_fails_the_step(engine, served):
    _failed_with(engine, served.host.url + "/invalid/v1", "AIGatewayError", "not JSON")


@pytest.mark.parametrize("base_url", ["file:///etc", "ftp://127.0.0.1:1/v1", "no-scheme/v1"])
def test_a_url_that_is_not_http_fails_the_step(engine, served, base_url):
    _failed_with(engine, base_url, "AIGatewayError", "http:// or https://")


def test_the_engine_still_serves_after_bad_answers(engine, served):
    assert httpx.get(engine.url + "/v1/events", timeout=10).status_code == 200
    result = _ask(engine, served.host.url + "/ok/v1")
    assert run(engine, result["run_id"])["status"] == "Completed"


@pytest.mark.parametrize("sdk_timeout_s, total", [
    (30.0, 30.0), (0.0, limits.AI_REQUEST_MAX_S), (-1.0, limits.AI_REQUEST_MAX_S),
    (float("inf"), limits.AI_REQUEST_MAX_S), (float("nan"), limits.AI_REQUEST_MAX_S),
    (10_000.0, limits.AI_REQUEST_MAX_S)])
def test_the_model_call_is_bounded_in_time_whatever_the_sdk_timeout(sdk_timeout_s, total):
    timeout = call_timeout(sdk_timeout_s)
    assert timeout.total == total and timeout.sock_connect == limits.AI_CONNECT_TIMEOUT_S
