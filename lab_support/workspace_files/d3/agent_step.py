"""The agent call of the email function, in a module of its own (Decision 3).

It runs the Course-4 support agent unchanged (``chat_agent.agents.answer_email``: the Agents
SDK's ``Runner.run_streamed`` with the Skills, the customer-data MCP tools and the guardrails).
"""

from chat_agent.agents import answer_email


# BEGIN SOLUTION
async def run_agent(email: dict, customer: dict, thread: dict) -> dict:
    """Draft a reply; the email's event id names the source, so an escalation the agent
    requests gets the same id on every retry."""
    conversation = thread.get("thread") or {}
    return await answer_email(customer["id"], email["body"], subject=email.get("subject"),
                              thread_id=conversation.get("id"), source_id=email["event_id"])
# END SOLUTION
