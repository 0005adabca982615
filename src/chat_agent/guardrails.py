"""Guardrails: keep secrets and personal data out of the agent and out of its drafts.

Policy (one place, used by the CLI, the Inngest steps and the agent's guardrails):

* credentials (API keys, private keys, ``password: …``) and single pieces of sensitive personal
  data (card numbers that pass the Luhn check, US SSNs, IBANs) are **redacted** before the
  agent sees the text;
* text carrying ``PII_HEAVY_THRESHOLD`` or more such items is **refused**: nobody should be
  pasting a spreadsheet of card numbers into a support agent;
* the agent's input guardrail trips if anything sensitive is still in the input (a caller
  skipped ``screen_input``), and its output guardrail trips if a draft would leak any.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from agents import (
    Agent,
    GuardrailFunctionOutput,
    RunContextWrapper,
    input_guardrail,
    output_guardrail,
)

PII_HEAVY_THRESHOLD = 4

SECRET_PATTERNS = {
    "api_key": re.compile(r"\b(?:sk|rk|pk)-[A-Za-z0-9_-]{16,}\b"),
    "aws_key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "github_token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}\b"),
    "private_key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE "
                              r"KEY-----|\Z)", re.S),
    "password": re.compile(r"\b(?:password|passwd|pwd)\s*[:=]\s*\S+", re.I),
}
PII_PATTERNS = {
    "ssn": re.compile(r"\b\d{3}-\d{2}-\d{4}\b"),
    "iban": re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){3,7}(?: ?[A-Z0-9]{1,3})?\b"),
}
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")


class InputRefused(ValueError):
    """The text is too sensitive to hand to the agent at all."""


@dataclass
class Screening:
    text: str
    findings: list[str] = field(default_factory=list)

    @property
    def pii_count(self) -> int:
        return sum(1 for f in self.findings if f in ("card_number", "ssn", "iban"))

    @property
    def refused(self) -> bool:
        return self.pii_count >= PII_HEAVY_THRESHOLD


def _luhn_ok(digits: str) -> bool:
    total, double = 0, False
    for ch in reversed(digits):
        d = int(ch)
        if double:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
        double = not double
    return total % 10 == 0


def screen_input(text: str) -> Screening:
    """Redact everything sensitive in ``text`` and list what was found."""
    if not isinstance(text, str):
        raise TypeError("screen_input expects a string")
    findings: list[str] = []

    def replace(kind):
        def _sub(match):
            findings.append(kind)
            return f"[redacted {kind}]"
        return _sub

    for kind, pattern in {**SECRET_PATTERNS, **PII_PATTERNS}.items():
        text = pattern.sub(replace(kind), text)

    def card(match):
        digits = re.sub(r"\D", "", match.group(0))
        if 13 <= len(digits) <= 19 and _luhn_ok(digits):
            findings.append("card_number")
            return "[redacted card_number]"
        return match.group(0)

    text = _CARD.sub(card, text)
    return Screening(text, findings)


def prepare_input(text: str) -> str:
    """Redacted text ready for the agent; raises ``InputRefused`` for PII-heavy text."""
    screening = screen_input(text)
    if screening.refused:
        raise InputRefused(
            f"Refused: the message carries {screening.pii_count} pieces of sensitive personal "
            f"data (limit {PII_HEAVY_THRESHOLD - 1}). Ask the customer to remove them.")
    return screening.text


def _input_text(data) -> str:
    if isinstance(data, str):
        return data
    parts = []
    for item in data:
        content = item.get("content") if isinstance(item, dict) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts += [p.get("text", "") for p in content if isinstance(p, dict)]
    return "\n".join(parts)


@input_guardrail(name="no_secrets_or_pii_in_input")
async def sensitive_input_guardrail(ctx: RunContextWrapper, agent: Agent,
                                    data) -> GuardrailFunctionOutput:
    screening = screen_input(_input_text(data))
    return GuardrailFunctionOutput(output_info={"findings": screening.findings},
                                   tripwire_triggered=bool(screening.findings))


@output_guardrail(name="no_secrets_or_pii_in_draft")
async def sensitive_output_guardrail(ctx: RunContextWrapper, agent: Agent,
                                     output) -> GuardrailFunctionOutput:
    text = output if isinstance(output, str) else str(output)
    screening = screen_input(text)
    empty = not text.strip()
    return GuardrailFunctionOutput(
        output_info={"findings": screening.findings, "empty": empty},
        tripwire_triggered=bool(screening.findings) or empty)
