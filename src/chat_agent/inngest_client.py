"""The one Inngest client of the Worker (``app_id="chat-agent"``).

The engine URL comes from ``INNGEST_DEV`` (e.g. ``http://127.0.0.1:8288``; the lab's embedded
engine or the real dev server) unless ``make_client(base_url)`` is given one: tests and
notebooks start engines on free ports. ``is_production=False`` because the lab only talks to
local dev engines, which need no signing key.
"""

from __future__ import annotations

import logging
import os

import inngest

APP_ID = "chat-agent"
DEFAULT_DEV_URL = "http://127.0.0.1:8288"


def engine_url(base_url: str | None = None) -> str:
    url = base_url or os.environ.get("INNGEST_DEV", "").strip()
    # INNGEST_DEV=1 means "dev mode, default address".
    if not url or url in ("1", "true", "True"):
        url = DEFAULT_DEV_URL
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"INNGEST_DEV / base_url must be an http(s) URL, got {url!r}")
    return url.rstrip("/")


def make_client(base_url: str | None = None) -> inngest.Inngest:
    url = engine_url(base_url)
    return inngest.Inngest(app_id=APP_ID, is_production=False, api_base_url=url,
                           event_api_base_url=url, logger=logging.getLogger("chat_agent.inngest"))


inngest_client = make_client()
