"""Talk to the support agent from a terminal.

    python -m chat_agent.cli --customer-id c-4429                # interactive
    python -m chat_agent.cli --customer-id c-4429 --once "Where is my refund?"

Without OPENAI_API_KEY the offline lab model answers (every answer says so). The agent
reaches Postgres only through the customer-data MCP server (spawned over stdio by default).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from customer_data_mcp import migrate

from .agents import answer_email
from .guardrails import InputRefused, prepare_input


def _print_result(result: dict) -> None:
    print(result["draft"])
    print(f"\n(model: {result['model']}; tools: {', '.join(result['tool_calls']) or 'none'})")
    for esc in result["escalations"]:
        print(f"escalation requested: {esc['reason']} -> {esc['event']} id={esc['request_id']}")


async def _ask(customer_id: str, text: str, mcp_mode: str, turn: int) -> int:
    try:
        body = prepare_input(text)
    except InputRefused as exc:
        print(exc, file=sys.stderr)
        return 2
    result = await answer_email(customer_id, body, source_id=f"cli-{customer_id}-{turn}",
                                mcp_mode=mcp_mode)
    _print_result(result)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chat_agent.cli", description=__doc__)
    parser.add_argument("--customer-id", default="c-4429")
    parser.add_argument("--once", metavar="TEXT", help="answer one message and exit")
    parser.add_argument("--mcp", choices=["stdio", "inprocess"], default="stdio",
                        help="how to reach the customer-data MCP server")
    args = parser.parse_args(argv)
    migrate.migrate()
    if migrate.counts()["customers"] == 0:
        print("The database has no customers yet: run "
              "`python -m customer_data_mcp.migrate seed` first.", file=sys.stderr)
        return 1
    if args.once is not None:
        if not args.once.strip():
            parser.error("--once needs a non-empty message")
        return asyncio.run(_ask(args.customer_id, args.once, args.mcp, 0))
    print(f"Talking as customer {args.customer_id}. Empty line or Ctrl-D to quit.")
    turn = 0
    while True:
        try:
            text = input("you> ").strip()
        except EOFError:
            return 0
        if not text:
            return 0
        turn += 1
        asyncio.run(_ask(args.customer_id, text, args.mcp, turn))


if __name__ == "__main__":
    sys.exit(main())
