"""Helpers for the dashboard browser tests: Debian chromium through Playwright, and an SDK
app synced to the engine."""

from __future__ import annotations

import contextlib
import os

import httpx
import pytest

from lab_support.host import ThreadedHost

CHROMIUM = os.environ.get("LAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PAGE_TIMEOUT_MS = 30_000
SYNC_TIMEOUT_S = 30.0


def require_chromium() -> None:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Debian chromium not found at {CHROMIUM} (install it with "
                    "`apt-get install chromium`, or run `make browser-deps`)")
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")


@contextlib.contextmanager
def browser_page():
    """A fresh Chromium page with bounded timeouts; everything is closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                     headless=True, timeout=PAGE_TIMEOUT_MS)
        try:
            page = browser.new_page()
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            page.set_default_navigation_timeout(PAGE_TIMEOUT_MS)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.js_errors = errors  # type: ignore[attr-defined]
            yield page
        finally:
            browser.close()


@contextlib.contextmanager
def synced_app(engine_url: str, app):
    """Serve an ASGI app with Inngest functions and sync it to the engine."""
    host = ThreadedHost(app).start()
    try:
        resp = httpx.post(engine_url + "/lab/v1/sync", json={"url": host.url + "/api/inngest"},
                          timeout=SYNC_TIMEOUT_S)
        assert resp.status_code == 200, f"sync failed: {resp.status_code} {resp.text}"
        yield host
    finally:
        host.stop()
