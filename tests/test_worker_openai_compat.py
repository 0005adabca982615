"""The offline model behind /v1/chat/completions: the OpenAI client and step.ai.infer use it."""

from __future__ import annotations

import inngest
import pytest
from fastapi.testclient import TestClient
from inngest.experimental.ai.openai import Adapter
from openai import OpenAI

from chat_agent.offline_model import BANNER
from chat_agent.openai_compat import create_app
from lab_support.host import ThreadedHost
from worker_helpers import engine_json, wait_until

TOOLS = [{"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}
         for n in ("load_customer", "load_thread")]


@pytest.fixture(scope="module")
def model_host():
    host = ThreadedHost(create_app()).start()
    try:
        yield host
    finally:
        host.stop()


def test_openai_client_gets_tool_calls_then_an_offline_answer(model_host):
    client = OpenAI(base_url=model_host.url + "/v1", api_key="offline", max_retries=0,
                    timeout=30)
    messages = [{"role": "user", "content": "Customer id: c-4429\nEmail body:\nWhere is my refund?"}]
    first = client.chat.completions.create(model="offline-lab-model", messages=messages,
                                           tools=TOOLS)
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "load_customer" and "c-4429" in call.function.arguments
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id,
                  "content": '{"id": "c-4429", "name": "Ayesha Khan", "tier": "enterprise"}'}]
    second = client.chat.completions.create(model="offline-lab-model", messages=messages,
                                            tools=TOOLS)
    assert second.choices[0].message.tool_calls[0].function.name == "load_thread"
    plain = client.chat.completions.create(model="offline-lab-model", messages=messages[:1])
    assert plain.choices[0].message.content.startswith(BANNER)
    assert client.models.list().data[0].id == "offline-lab-model"


def test_bad_requests_get_openai_style_errors():
    client = TestClient(create_app())
    for body in (b"{oops", b'{"messages": []}', b'{"messages": [{"role": "wizard"}]}'):
        response = client.post("/v1/chat/completions", content=body)
        assert response.status_code == 400
        assert response.json()["error"]["type"] == "invalid_request_error"


def test_step_ai_infer_reaches_the_offline_model(engine, model_host):
    from fastapi import FastAPI
    import inngest.fast_api

    client = inngest.Inngest(app_id="ai-infer-test", is_production=False,
                             api_base_url=engine.url, event_api_base_url=engine.url)

    @client.create_function(fn_id="ask", trigger=inngest.TriggerEvent(event="test/ask"))
    async def ask(ctx: inngest.Context) -> str:
        adapter = Adapter(auth_key="offline", base_url=model_host.url + "/v1",
                          model="offline-lab-model")
        answer = await ctx.step.ai.infer("infer", adapter=adapter, body={
            "messages": [{"role": "user", "content": ctx.event.data["question"]}]})
        return answer["choices"][0]["message"]["content"]

    app = FastAPI()
    inngest.fast_api.serve(app, client, [ask])
    with ThreadedHost(app) as fn_host:
        engine_json(engine.url, "POST", "/lab/v1/sync", json={"url": fn_host.url + "/api/inngest"})
        internal = client.send_sync(inngest.Event(name="test/ask", id="ask-1",
                                                  data={"question": "Hello?"}))[0]
        run = wait_until(
            lambda: (r := engine_json(engine.url, "GET", f"/v1/events/{internal}/runs")["data"])
            and r[0]["status"] in ("Completed", "Failed") and r[0],
            timeout=120, message="the ai.infer run to finish")
        run = engine_json(engine.url, "GET", f"/v1/runs/{run['run_id']}")["data"]
    assert run["status"] == "Completed", run
    assert run["output"].startswith(BANNER)
