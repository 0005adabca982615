"""The one Inngest client of the Worker (``app_id="chat-agent"``).

The engine URL is read from ``INNGEST_DEV`` (e.g. ``http://127.0.0.1:8288``; the lab's embedded
engine or the real dev server) **each time the client talks to an engine**, not when this
module is imported: a notebook may import the Worker before ``lab.start`` has chosen an engine
on a free port and set ``INNGEST_DEV``. ``make_client(base_url)`` pins a URL instead (tests
start engines on free ports). ``is_production=False`` because the lab only talks to local dev
engines, which need no signing key.
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


class EnvEngineInngest(inngest.Inngest):
    """An ``inngest.Inngest`` whose API and event URLs follow ``INNGEST_DEV`` at call time.

    The SDK keeps both origins in attributes it sets once in ``__init__``; here they are
    properties that ignore that assignment and ask ``engine_url()`` on every read.
    """

    @property
    def _api_origin(self) -> str:
        return engine_url()

    @_api_origin.setter
    def _api_origin(self, _value: str) -> None:
        pass  # set by the SDK's __init__ from the import-time environment: not used

    @property
    def _event_api_origin(self) -> str:
        return engine_url()

    @_event_api_origin.setter
    def _event_api_origin(self, _value: str) -> None:
        pass


def make_client(base_url: str | None = None) -> inngest.Inngest:
    """A client pinned to ``base_url``, or (None) one that follows ``INNGEST_DEV``."""
    logger = logging.getLogger("chat_agent.inngest")
    if base_url is None:
        return EnvEngineInngest(app_id=APP_ID, is_production=False, logger=logger)
    url = engine_url(base_url)
    return inngest.Inngest(app_id=APP_ID, is_production=False, api_base_url=url,
                           event_api_base_url=url, logger=logger)


inngest_client = make_client()
