"""When an email must go to a human: chargebacks, legal threats, big refunds.

Shared by the offline model (to decide to call ``request_escalation``) and by the
escalate-with-context Skill's wording, so both agree on the same rules.
"""

from __future__ import annotations

import re

REFUND_ESCALATION_THRESHOLD_USD = 500

_CHARGEBACK = re.compile(r"\b(charge ?back|dispute[ds]? (the|this|a) (charge|payment))\b", re.I)
_LEGAL = re.compile(r"\b(lawyer|attorney|solicitor|legal action|sue|suing|lawsuit|court)\b",
                    re.I)
_AMOUNT = re.compile(r"(?:\$|usd\s?|eur\s?|€)\s?(\d[\d,]*(?:\.\d+)?)|(\d[\d,]*(?:\.\d+)?)\s?"
                     r"(?:usd|dollars|eur|euros)\b", re.I)


def refund_amounts(text: str) -> list[float]:
    """Money amounts mentioned in ``text`` (only when the text talks about a refund)."""
    if not re.search(r"\brefund", text or "", re.I):
        return []
    amounts = []
    for match in _AMOUNT.finditer(text):
        raw = (match.group(1) or match.group(2)).replace(",", "")
        amounts.append(float(raw))
    return amounts


def escalation_reason(text: str) -> str | None:
    """The reason this email needs a human, or None."""
    text = text or ""
    if _CHARGEBACK.search(text):
        return "chargeback"
    if _LEGAL.search(text):
        return "legal_threat"
    big = [a for a in refund_amounts(text) if a > REFUND_ESCALATION_THRESHOLD_USD]
    if big:
        return f"refund_over_{REFUND_ESCALATION_THRESHOLD_USD}"
    return None
