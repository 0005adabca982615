"""The offline lab model behind a small OpenAI-compatible API.

    POST /v1/chat/completions   (messages, optional tools, optional stream) -> a chat.completion
                                object, or with "stream": true server-sent chat.completion.chunk
                                events ending in [DONE] (usage last, with stream_options)
    GET  /v1/models

Two kinds of caller use it: ``step.ai.infer``'s OpenAI adapter (the engine posts, no stream)
and the Agents SDK's chat-completions model (``chat_agent.models`` with
``CHAT_AGENT_MODEL_URL``; it streams). Serve it with
``lab_support.host.ThreadedHost(create_app()).start()`` and use ``<host url>/v1``. Any bearer
key is accepted: it is a local, offline stand-in, and every answer says it came from the
offline model. Tokens are counted as about four characters each.

``create_app(gate=...)`` puts something in front of every completion, e.g. the lab's rate
limiter (``lab_support.model_gate``): ``await gate.admit(model, caller)`` returns a response to
send instead (a 429, a scripted 5xx) or None, and ``await gate.record(model, caller, usage)``
is told what each answered completion used.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Protocol

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from .offline_model import MODEL_NAME, OfflineLabModel


class Gate(Protocol):
    async def admit(self, model: str, caller: str) -> Response | None: ...

    async def record(self, model: str, caller: str, usage: dict) -> None: ...


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error",
                                   "code": None}}, status_code=status)


def chat_to_items(messages: list) -> tuple[str, list[dict]]:
    """OpenAI chat messages -> (system instructions, Responses-style input items)."""
    instructions, items = [], []
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or msg.get("role") not in ("system", "developer", "user",
                                                                "assistant", "tool"):
            raise ValueError(f"messages[{i}] needs a role of system/user/assistant/tool")
        content = msg.get("content") or ""
        if isinstance(content, list):
            content = "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
        role = msg["role"]
        if role in ("system", "developer"):
            instructions.append(content)
        elif role == "user":
            items.append({"role": "user", "content": content})
        elif role == "assistant":
            for call in msg.get("tool_calls") or []:
                fn = call.get("function") or {}
                items.append({"type": "function_call", "call_id": call.get("id"),
                              "name": fn.get("name"), "arguments": fn.get("arguments", "{}")})
            if content:
                items.append({"role": "assistant", "content": content})
        else:
            items.append({"type": "function_call_output", "call_id": msg.get("tool_call_id"),
                          "output": content})
    return "\n".join(instructions), items


def complete(body: dict) -> dict:
    """Answer one chat-completions request body (raises ValueError on bad input)."""
    if not isinstance(body, dict):
        raise ValueError("the request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("'messages' must be a non-empty array")
    tools = body.get("tools") or []
    if not isinstance(tools, list):
        raise ValueError("'tools' must be an array")
    names = {(t.get("function") or {}).get("name") for t in tools if isinstance(t, dict)}
    instructions, items = chat_to_items(messages)
    output = OfflineLabModel()._decide(instructions, items, {n for n in names if n})
    first = output[0]
    digest = hashlib.sha1(json.dumps(body, sort_keys=True).encode()).hexdigest()[:24]
    if getattr(first, "type", "") == "function_call":
        message = {"role": "assistant", "content": None, "tool_calls": [
            {"id": first.call_id, "type": "function",
             "function": {"name": first.name, "arguments": first.arguments}}]}
        finish = "tool_calls"
    else:
        message = {"role": "assistant", "content": first.content[0].text}
        finish = "stop"
    prompt_tokens = len(json.dumps(messages)) // 4
    completion_tokens = len(json.dumps(message)) // 4
    return {"id": f"chatcmpl-offline-{digest}", "object": "chat.completion",
            "created": int(time.time()), "model": body.get("model") or MODEL_NAME,
            "system_fingerprint": "offline-lab-model",
            "choices": [{"index": 0, "message": message, "finish_reason": finish,
                         "logprobs": None}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


def _chunk(answer: dict, delta: dict, finish: str | None) -> dict:
    return {"id": answer["id"], "object": "chat.completion.chunk", "created": answer["created"],
            "model": answer["model"], "system_fingerprint": answer["system_fingerprint"],
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish,
                         "logprobs": None}]}


def stream_events(answer: dict, include_usage: bool) -> list[str]:
    """A finished completion as the server-sent events a streaming OpenAI call receives."""
    message = answer["choices"][0]["message"]
    chunks = [_chunk(answer, {"role": "assistant", "content": ""}, None)]
    if message.get("tool_calls"):
        chunks.append(_chunk(answer, {"tool_calls": [
            {"index": i, **call} for i, call in enumerate(message["tool_calls"])]}, None))
    else:
        chunks.append(_chunk(answer, {"content": message["content"]}, None))
    chunks.append(_chunk(answer, {}, answer["choices"][0]["finish_reason"]))
    if include_usage:
        chunks.append({**_chunk(answer, {}, None), "choices": [], "usage": answer["usage"]})
    return [f"data: {json.dumps(c)}\n\n" for c in chunks] + ["data: [DONE]\n\n"]


def caller_of(request: Request) -> str:
    """Which kind of client called: ``agents-sdk`` (the Agents SDK's model, inside a
    ``step.run``), ``openai-python`` (the OpenAI client used directly) or ``http`` (anything
    else: the engine making a ``step.ai.infer`` call, curl)."""
    agent = request.headers.get("user-agent", "")
    if agent.startswith("Agents/"):
        return "agents-sdk"
    return "openai-python" if agent.startswith(("AsyncOpenAI/", "OpenAI/")) else "http"


def create_app(gate: Gate | None = None) -> FastAPI:
    app = FastAPI(title="offline lab model (OpenAI-compatible)")

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        try:
            body = json.loads(await request.body())
        except (ValueError, RecursionError) as exc:
            return _error(f"the request body is not JSON: {exc}")
        model = (body.get("model") if isinstance(body, dict) else None) or MODEL_NAME
        caller = caller_of(request)
        if gate is not None:
            refusal = await gate.admit(str(model), caller)
            if refusal is not None:
                return refusal
        try:
            answer = complete(body)
        except ValueError as exc:
            return _error(str(exc))
        if gate is not None:
            await gate.record(str(model), caller, answer["usage"])
        if not body.get("stream"):
            return answer
        options = body.get("stream_options") if isinstance(body.get("stream_options"),
                                                           dict) else {}
        return StreamingResponse(iter(stream_events(answer, bool(options.get("include_usage")))),
                                 media_type="text/event-stream")

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": MODEL_NAME, "object": "model", "created": 0,
                                            "owned_by": "production-worker-lab"}]}

    return app
