"""The customer-support agent (and its health-check sibling): instructions + Skills, the
customer-data MCP tools, the Worker's own function tools, and guardrails.

Nothing here knows about Inngest. ``answer_email`` and ``draft_outreach`` are what any
entry point calls (the CLI, a notebook, the Inngest steps); they return plain dicts, including
``usage`` (model, requests, input/output tokens) so a step's output shows what it cost.
"""

from __future__ import annotations

import json

from agents import Agent, ItemHelpers, ModelSettings, RunConfig, Runner

from .guardrails import sensitive_input_guardrail, sensitive_output_guardrail
from .mcp_bridge import customer_data_server
from .models import get_model, model_name, using_offline_model
from .skills import load_skills
from .tools import SUPPORT_TOOLS, SupportContext

SUPPORT_INSTRUCTIONS = """You are the customer-support agent of a B2B software company.
Draft replies to customer emails for a human to send. Always load the customer and their
thread before drafting, reuse resolutions of similar past cases, and request a human review
for chargebacks, legal threats and refunds above 500 USD instead of promising anything.
Never include secrets or card numbers in a draft. Keep replies short and specific."""

HEALTH_INSTRUCTIONS = """You are the customer-success agent. Draft a proactive outreach for
this customer based on their recent activity: load the customer and their recent activity,
acknowledge anything unresolved, and offer help. Never promise refunds or credits."""

MAX_TURNS = 10
# Ask streaming chat-completions endpoints for token usage (OpenAI's own client does anyway).
MODEL_SETTINGS = ModelSettings(include_usage=True)


def build_support_agent(mcp_servers=None, model=None) -> Agent:
    skills = "\n".join(s.as_instructions() for s in load_skills())
    return Agent(
        name="customer-support",
        instructions=f"{SUPPORT_INSTRUCTIONS}\n\n# Skills\n{skills}",
        model=model or get_model(),
        model_settings=MODEL_SETTINGS,
        tools=list(SUPPORT_TOOLS),
        mcp_servers=list(mcp_servers or []),
        input_guardrails=[sensitive_input_guardrail],
        output_guardrails=[sensitive_output_guardrail],
    )


def build_health_agent(mcp_servers=None, model=None) -> Agent:
    return Agent(
        name="customer-health",
        instructions=HEALTH_INSTRUCTIONS,
        model=model or get_model(),
        model_settings=MODEL_SETTINGS,
        mcp_servers=list(mcp_servers or []),
        input_guardrails=[sensitive_input_guardrail],
        output_guardrails=[sensitive_output_guardrail],
    )


def email_prompt(customer_id: str, body: str, subject: str | None = None,
                 thread_id: str | None = None, context: dict | None = None) -> str:
    lines = [f"Customer id: {customer_id}"]
    if thread_id:
        lines.append(f"Thread id: {thread_id}")
    if subject:
        lines.append(f"Email subject: {subject}")
    if context:
        # What the caller already loaded, so a real model need not fetch it again.
        lines.append("Known context (JSON): " + json.dumps(context, sort_keys=True)[:4000])
    lines += ["Email body:", body]
    return "\n".join(lines)


async def _run(agent: Agent, prompt: str, context: SupportContext) -> dict:
    config = RunConfig(tracing_disabled=using_offline_model(), workflow_name=agent.name)
    result = Runner.run_streamed(agent, prompt, context=context, max_turns=MAX_TURNS,
                                 run_config=config)
    tool_calls = []
    async for event in result.stream_events():
        if event.type == "run_item_stream_event" and event.name == "tool_called":
            tool_calls.append(getattr(event.item.raw_item, "name", "?"))
    final = result.final_output
    if not isinstance(final, str):
        final = ItemHelpers.text_message_outputs(result.new_items) or str(final)
    model = model_name(agent.model)
    usage = result.context_wrapper.usage
    return {"draft": final, "model": model, "offline": using_offline_model(),
            "tool_calls": tool_calls, "escalations": list(context.escalations),
            "usage": {"model": model, "requests": usage.requests,
                      "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}}


async def answer_email(customer_id: str, body: str, *, subject: str | None = None,
                       thread_id: str | None = None, source_id: str = "cli",
                       context: dict | None = None, mcp_mode: str | None = None,
                       model=None) -> dict:
    """Run the support agent on one (already screened) email; returns the draft, the tool
    calls made and any escalation requests."""
    async with customer_data_server(mcp_mode) as server:
        agent = build_support_agent([server], model=model)
        prompt = email_prompt(customer_id, body, subject, thread_id, context)
        return await _run(agent, prompt, SupportContext(source_id=source_id))


async def draft_outreach(customer_id: str, *, activity: dict | None = None,
                         source_id: str = "cli", mcp_mode: str | None = None,
                         model=None) -> dict:
    """Run the health agent for one customer; returns the outreach draft."""
    async with customer_data_server(mcp_mode) as server:
        agent = build_health_agent([server], model=model)
        prompt = email_prompt(customer_id, "Draft a proactive outreach for this customer.",
                              context={"recent_activity": activity} if activity else None)
        return await _run(agent, prompt, SupportContext(source_id=source_id))
