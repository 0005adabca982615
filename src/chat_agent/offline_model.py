"""The offline lab model: an Agents SDK ``Model`` that needs no API key.

It is a small deterministic planner, not a language model. Given the same conversation it
always makes the same tool calls and writes the same text, and every text it writes starts
with ``[offline lab model]`` so nobody mistakes it for a real model's answer.

What it does, in order, using only the tools the agent actually has:

* support mode (the default): ``load_customer`` → ``load_thread`` → ``find_similar_cases`` →
  ``request_escalation`` when the email mentions a chargeback, a legal threat, or a refund over
  the threshold → a draft reply built from what the tools returned;
* outreach mode (instructions mention "proactive outreach"): ``load_customer`` →
  ``recent_activity`` → an outreach draft.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator

from agents.items import ModelResponse
from agents.models.interface import Model, ModelTracing
from agents.usage import Usage
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseUsage,
)
from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails

from .escalation_rules import escalation_reason

MODEL_NAME = "offline-lab-model"
BANNER = "[offline lab model]"
SIMILARITY_FLOOR = 0.3

_CUSTOMER_ID = re.compile(r"\bc-[A-Za-z0-9][A-Za-z0-9-]*\b")


def _text_of(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(_text_of(part.get("text", "") if isinstance(part, dict) else part)
                         for part in content)
    return str(content or "")


def _json_or_none(text: str):
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        match = re.search(r"[\[{].*[\]}]", text or "", re.S)
        if match:
            try:
                return json.loads(match.group(0))
            except ValueError:
                return None
    return None


class _Conversation:
    """What the model can see: the user's request and the tool results so far."""

    def __init__(self, input_items) -> None:
        items = [{"role": "user", "content": input_items}] if isinstance(input_items, str) \
            else list(input_items)
        self.user_text = ""
        self.calls: dict[str, dict] = {}  # tool name -> {"args", "output"}
        pending: dict[str, str] = {}
        for item in items:
            item = item if isinstance(item, dict) else item.model_dump()
            kind = item.get("type")
            if item.get("role") == "user":
                self.user_text += _text_of(item.get("content")) + "\n"
            elif kind == "function_call":
                pending[item["call_id"]] = item["name"]
                self.calls[item["name"]] = {"args": _json_or_none(item.get("arguments")),
                                            "output": None}
            elif kind == "function_call_output" and item.get("call_id") in pending:
                output = _text_of(item.get("output"))
                self.calls[pending[item["call_id"]]]["output"] = output

    def field(self, name: str) -> str | None:
        match = re.search(rf"^{name}:\s*(.+)$", self.user_text, re.M | re.I)
        return match.group(1).strip() if match else None

    @property
    def customer_id(self) -> str | None:
        found = self.field("customer id")
        if found:
            return found
        match = _CUSTOMER_ID.search(self.user_text)
        return match.group(0) if match else None

    @property
    def email_body(self) -> str:
        match = re.search(r"^email body:\s*\n?(.*)", self.user_text, re.S | re.I | re.M)
        return (match.group(1) if match else self.user_text).strip()

    def result(self, tool: str):
        call = self.calls.get(tool)
        return _json_or_none(call["output"]) if call and call["output"] else None

    def failed(self, tool: str) -> str | None:
        call = self.calls.get(tool)
        if call and call["output"] is not None and self.result(tool) is None:
            return call["output"]
        return None


class OfflineLabModel(Model):
    """Deterministic stand-in for an LLM; see the module docstring."""

    def __init__(self, name: str = MODEL_NAME) -> None:
        self.name = name

    async def get_response(self, system_instructions, input, model_settings, tools,
                           output_schema, handoffs, tracing: ModelTracing, *,
                           previous_response_id=None, conversation_id=None, prompt=None,
                           **_ignored) -> ModelResponse:
        output = self._decide(system_instructions or "", input, {t.name for t in tools})
        tokens_in, tokens_out = _token_counts(system_instructions, input, output)
        usage = Usage(requests=1, input_tokens=tokens_in, output_tokens=tokens_out,
                      total_tokens=tokens_in + tokens_out)
        return ModelResponse(output=output, usage=usage, response_id=None)

    async def stream_response(self, system_instructions, input, model_settings, tools,
                              output_schema, handoffs, tracing: ModelTracing, *,
                              previous_response_id=None, conversation_id=None, prompt=None,
                              **_ignored) -> AsyncIterator:
        # One terminal event carries the whole answer; the runner needs nothing more.
        output = self._decide(system_instructions or "", input, {t.name for t in tools})
        tokens_in, tokens_out = _token_counts(system_instructions, input, output)
        # model_construct: the details' required fields differ between openai releases.
        usage = ResponseUsage.model_construct(
            input_tokens=tokens_in, output_tokens=tokens_out, total_tokens=tokens_in + tokens_out,
            input_tokens_details=InputTokensDetails.model_construct(cached_tokens=0),
            output_tokens_details=OutputTokensDetails.model_construct(reasoning_tokens=0))
        response = Response.model_construct(
            id=f"offline-{_digest(str(input))}", object="response", created_at=0.0,
            model=self.name, output=output, usage=usage, tools=[], tool_choice="auto",
            parallel_tool_calls=False, status="completed")
        yield ResponseCompletedEvent.model_construct(type="response.completed", response=response,
                                                     sequence_number=0)

    # ------------------------------------------------------------------ planning

    def _decide(self, instructions: str, input_items, tool_names: set[str]) -> list:
        convo = _Conversation(input_items)
        outreach = "proactive outreach" in instructions.lower()
        customer_id = convo.customer_id
        for tool, args in self._plan(convo, customer_id, outreach):
            if tool in tool_names and tool not in convo.calls:
                return [_tool_call(tool, args, convo)]
            if tool in convo.calls and tool == "load_customer" and convo.failed(tool):
                return [_message(f"{BANNER} I could not load customer {customer_id}: "
                                 f"{convo.failed(tool)}. No draft was written.")]
        text = _outreach_text(convo) if outreach else _reply_text(convo)
        return [_message(text)]

    def _plan(self, convo: _Conversation, customer_id: str | None, outreach: bool):
        if customer_id:
            yield "load_customer", {"customer_id": customer_id}
        if outreach:
            if customer_id:
                yield "recent_activity", {"customer_id": customer_id, "days": 30}
            return
        if customer_id:
            yield "load_thread", {"customer_id": customer_id}
        body = convo.email_body
        if body:
            yield "find_similar_cases", {"query": body[:500], "limit": 3}
        reason = escalation_reason(body)
        if reason and customer_id:
            yield "request_escalation", {"customer_id": customer_id, "reason": reason,
                                         "summary": body[:300]}


def _token_counts(instructions, input_items, output) -> tuple[int, int]:
    """About four characters per token, like the OpenAI-compatible endpoint counts."""
    sent = len(str(instructions or "")) + len(str(input_items))
    produced = sum(len(str(item.model_dump() if hasattr(item, "model_dump") else item))
                   for item in output)
    return max(1, sent // 4), max(1, produced // 4)


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _tool_call(tool: str, args: dict, convo: _Conversation) -> ResponseFunctionToolCall:
    arguments = json.dumps(args, sort_keys=True)
    call_id = f"call_{_digest(tool + arguments + convo.user_text)}"
    return ResponseFunctionToolCall(type="function_call", id=f"fc_{call_id}", call_id=call_id,
                                    name=tool, arguments=arguments, status="completed")


def _message(text: str) -> ResponseOutputMessage:
    return ResponseOutputMessage(
        type="message", id=f"msg_{_digest(text)}", role="assistant", status="completed",
        content=[ResponseOutputText(type="output_text", text=text, annotations=[])])


def _first_name(customer: dict | None) -> str:
    return (customer or {}).get("name", "there").split()[0]


def _reply_text(convo: _Conversation) -> str:
    customer = convo.result("load_customer")
    thread = convo.result("load_thread") or {}
    cases = convo.result("find_similar_cases") or []
    escalation = convo.result("request_escalation")
    subject = convo.field("email subject")
    earlier = (thread.get("thread") or {}).get("subject")
    lines = [f"{BANNER} Draft reply"
             + (f" for {customer['name']} ({customer['tier']})" if customer else "") + ":",
             "", f"Hi {_first_name(customer)},", "",
             "Thank you for your email" + (f" about {subject.lower()}." if subject else ".")
             + (f" I have our earlier conversation ({earlier.lower()}) in front of me."
                if earlier else "")]
    # Only reuse a past fix that is clearly about the same thing.
    if cases and cases[0].get("similarity", 0) >= SIMILARITY_FLOOR:
        best = cases[0]
        lines.append(f"We have handled a similar case before ({best['subject'].lower()}): "
                     f"{best['resolution']}")
    if escalation:
        lines.append("Because of what you describe, a senior colleague will review this "
                     "personally and get back to you.")
    else:
        lines.append("We are looking into it and will update you within one business day.")
    lines += ["", "Best regards,", "Customer Support", "",
              "Based on: " + ", ".join(sorted(convo.calls)) if convo.calls else "Based on: "
              "the email alone (no tools were available)."]
    return "\n".join(lines)


def _outreach_text(convo: _Conversation) -> str:
    customer = convo.result("load_customer")
    activity = convo.result("recent_activity") or {}
    refunds = activity.get("refunds") or []
    conversations = activity.get("conversations") or []
    lines = [f"{BANNER} Proactive outreach draft"
             + (f" for {customer['name']} ({customer['tier']})" if customer else "") + ":",
             "", f"Hi {_first_name(customer)},", ""]
    if conversations:
        lines.append(f"We noticed you got in touch recently about "
                     f"{conversations[0]['subject'].lower()}; we want to make sure it is "
                     "fully resolved.")
    else:
        lines.append("It has been a while since we last checked in, so here is a quick hello.")
    if refunds:
        lines.append(f"Your {len(refunds)} recent refund request(s) are on our radar.")
    lines += ["If anything is slowing your team down, reply to this email and we will help.",
              "", "Best regards,", "Customer Success"]
    return "\n".join(lines)
