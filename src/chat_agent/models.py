"""Pick the model: a real OpenAI model when ``OPENAI_API_KEY`` is set, else the offline one."""

from __future__ import annotations

import os

from .offline_model import OfflineLabModel

DEFAULT_MODEL = "gpt-4.1-mini"


def using_offline_model() -> bool:
    return not os.environ.get("OPENAI_API_KEY")


def get_model():
    """A model name for the Agents SDK (keyed) or an ``OfflineLabModel`` instance."""
    if using_offline_model():
        return OfflineLabModel()
    return os.environ.get("CHAT_AGENT_MODEL", DEFAULT_MODEL)
