"""The customer-support Worker (``agents``, ``tools``, ``guardrails``, ``skills``, ``cli``) and
its Inngest operational envelope (``inngest_client``, ``tasks``, ``envelope_steps``, ``serve``).

The internals never import Inngest; ``python -m chat_agent.lint_envelope`` checks that and the
other envelope rules in CLAUDE.md.
"""
