"""Pick the model the agents use.

* ``OPENAI_API_KEY`` set: the real OpenAI model named by ``CHAT_AGENT_MODEL``.
* else ``CHAT_AGENT_MODEL_URL`` set (an OpenAI-compatible base URL, e.g. the lab's
  ``lab.model.url``): the offline lab model *over HTTP*, through the Agents SDK's
  chat-completions model and a real ``openai.AsyncOpenAI`` client with no retries of its own.
  A 429 from that endpoint is then a genuine ``openai.RateLimitError`` inside the agent step,
  so Inngest (not the client) retries it, and tokens come back in the response's ``usage``.
  Read at call time, so a process started before the lab follows it too.
* else ``OfflineLabModel`` in this process (no HTTP at all).
"""

from __future__ import annotations

import os

from .offline_model import MODEL_NAME, OfflineLabModel

DEFAULT_MODEL = "gpt-4.1-mini"
MODEL_URL_ENV = "CHAT_AGENT_MODEL_URL"
MODEL_TIMEOUT_ENV = "CHAT_AGENT_MODEL_TIMEOUT"
DEFAULT_TIMEOUT_S = 30.0


def using_offline_model() -> bool:
    return not os.environ.get("OPENAI_API_KEY")


def get_model():
    """A model name for the Agents SDK (keyed), or a ``Model`` instance (offline)."""
    if not using_offline_model():
        return os.environ.get("CHAT_AGENT_MODEL", DEFAULT_MODEL)
    url = os.environ.get(MODEL_URL_ENV, "").strip()
    if url:
        from agents import OpenAIChatCompletionsModel
        from openai import AsyncOpenAI

        timeout = float(os.environ.get(MODEL_TIMEOUT_ENV) or DEFAULT_TIMEOUT_S)
        client = AsyncOpenAI(base_url=url, api_key="offline-lab", max_retries=0,
                             timeout=timeout)
        return OpenAIChatCompletionsModel(model=MODEL_NAME, openai_client=client)
    return OfflineLabModel()


def model_name(model) -> str:
    """The name a model string or ``Model`` instance goes by."""
    if isinstance(model, str):
        return model
    return str(getattr(model, "name", None) or getattr(model, "model", None) or "?")
