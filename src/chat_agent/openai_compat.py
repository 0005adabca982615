"""The offline lab model behind a small OpenAI-compatible API, for ``step.ai.infer`` lessons.

    POST /v1/chat/completions   (messages, optional tools) -> a chat.completion object
    GET  /v1/models

Serve it in a notebook with ``lab_support.host.ThreadedHost(create_app()).start()`` and point
``step.ai.infer``'s OpenAI adapter at ``<host url>/v1``. Any bearer key is accepted: it is a
local, offline stand-in, and every answer says it came from the offline model.
"""

from __future__ import annotations

import hashlib
import json
import time

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from .offline_model import MODEL_NAME, OfflineLabModel


class _Tool:
    def __init__(self, name: str) -> None:
        self.name = name


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


def create_app() -> FastAPI:
    app = FastAPI(title="offline lab model (OpenAI-compatible)")

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        try:
            body = json.loads(await request.body())
        except ValueError as exc:
            return _error(f"the request body is not JSON: {exc}")
        if isinstance(body, dict) and body.get("stream"):
            return _error("streaming is not supported by the offline lab model")
        try:
            return complete(body)
        except ValueError as exc:
            return _error(str(exc))

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": MODEL_NAME, "object": "model", "created": 0,
                                            "owned_by": "production-worker-lab"}]}

    return app
