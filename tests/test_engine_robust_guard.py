"""Issue #9, findings 8 and 9 (event key): a page on another origin, or a rebinding DNS name,
cannot drive the engine; the SDK, curl and the dashboard on its own origin still can.

Real HTTP requests with the headers a browser would send (``Origin``) or a rebinding attack
would produce (``Host``).
"""

from __future__ import annotations

import asyncio
import os

import httpx
import inngest
import pytest
from mcp import Client

from engine_helpers import event_runs, serving, wait_run_for_event
from lab_support.engine_process import EngineProcess

EVIL = "https://evil.example"


def clock_offset(engine) -> int:
    return httpx.get(engine.url + "/lab/v1/clock", timeout=10).json()["offset_ms"]


@pytest.mark.parametrize("method, path, body", [
    ("POST", "/e/key", {"name": "guard/from-evil"}),
    ("POST", "/lab/v1/clock/advance", {"duration": "720h"}),
    ("POST", "/lab/v1/reset", None),
    ("POST", "/fn/register", {"appname": "evil", "functions": []}),
    ("POST", "/v1/cancellations", {}),
    ("DELETE", "/lab/v1/chaos", None),
    ("POST", "/v0/gql", {"query": "{ apps { id } }"}),
    ("POST", "/mcp", {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
])
def test_a_foreign_origin_changes_nothing(engine, method, path, body):
    before = clock_offset(engine)
    r = httpx.request(method, engine.url + path, json=body, timeout=10,
                      headers={"origin": EVIL})
    assert r.status_code == 403 and "cross-origin request refused" in r.json()["error"]
    assert clock_offset(engine) == before
    names = [e["name"] for e in httpx.get(engine.url + "/v1/events").json()["data"]]
    assert "guard/from-evil" not in names


@pytest.mark.parametrize("origin", ["null", "http://127.0.0.1.evil.example",
                                    "http://localhost.evil.example:8288", "file://",
                                    "http://10.0.0.5:8288"])
def test_look_alike_and_opaque_origins_are_foreign(engine, origin):
    r = httpx.post(engine.url + "/lab/v1/clock/advance", json={"seconds": 1},
                   headers={"origin": origin}, timeout=10)
    assert r.status_code == 403


def test_loopback_pages_are_trusted_as_by_the_mcp_transport(engine):
    """JupyterLab (another loopback port) may call the engine from a widget."""
    jupyter = {"origin": "http://127.0.0.1:8888"}
    assert httpx.post(engine.url + "/e/key", json={"name": "guard/jupyter"}, headers=jupyter
                      ).status_code == 200


def test_the_dashboard_on_its_own_origin_and_clients_without_origin_work(engine):
    own = {"origin": f"http://127.0.0.1:{engine.port}"}
    assert httpx.post(engine.url + "/e/key", json={"name": "guard/own"}, headers=own
                      ).status_code == 200
    local = {"origin": f"http://localhost:{engine.port}", "host": f"localhost:{engine.port}"}
    assert httpx.get(engine.url + "/lab/v1/clock", headers=local).status_code == 200
    assert httpx.post(engine.url + "/e/key", json={"name": "guard/no-origin"}).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8288", "10.1.2.3:8288", ""])
def test_a_foreign_host_is_refused(engine, host):
    r = httpx.get(engine.url + "/v1/events", headers={"host": host}, timeout=10)
    assert r.status_code == 421 and "--allow-host" in r.json()["error"]


@pytest.mark.parametrize("host", ["localhost:{port}", "127.0.0.1:{port}", "[::1]:{port}",
                                  "localhost"])
def test_loopback_hosts_are_served(engine, host):
    r = httpx.get(engine.url + "/health", headers={"host": host.format(port=engine.port)})
    assert r.status_code == 200


def test_allow_host_and_allow_origin_widen_the_policy():
    eng = EngineProcess(memory=True, extra_args=("--allow-host", "lab.internal",
                                                 "--allow-origin", "http://localhost:6274"))
    with eng:
        host = {"host": f"lab.internal:{eng.port}"}
        assert httpx.get(eng.url + "/health", headers=host).status_code == 200
        assert httpx.get(eng.url + "/health", headers={"host": "other.internal"}
                         ).status_code == 421
        inspector = {"origin": "http://localhost:6274"}
        assert httpx.post(eng.url + "/lab/v1/clock/advance", json={"seconds": 1},
                          headers=inspector).status_code == 200
        page = {"origin": f"http://lab.internal:{eng.port}", **host}
        assert httpx.post(eng.url + "/e/k", json={"name": "a"}, headers=page).status_code == 200


def test_the_mcp_mount_keeps_working_for_clients(engine):
    async def run():
        async with Client(engine.url + "/mcp", read_timeout_seconds=30) as client:
            return await client.call_tool("list_functions", {"appId": "labtest"})
    result = asyncio.run(asyncio.wait_for(run(), 60))
    assert not result.is_error


def test_a_configured_event_key_is_enforced():
    eng = EngineProcess(memory=True, env={**os.environ, "INNGEST_EVENT_KEY": "sekrit"})
    with eng:
        wrong = httpx.post(eng.url + "/e/not-it", json={"name": "key/test"})
        assert wrong.status_code == 401 and wrong.json()["error"] == "Event key not found"
        assert httpx.get(eng.url + "/v1/events").json()["data"] == []
        # An SDK client with the key (it reads INNGEST_EVENT_KEY too); the MCP tools use
        # the engine's own key.
        client = inngest.Inngest(app_id="keyed", is_production=False, event_key="sekrit",
                                 api_base_url=eng.url, event_api_base_url=eng.url)

        @client.create_function(fn_id="hi", trigger=inngest.TriggerEvent(event="key/hi"))
        async def hi(ctx: inngest.Context) -> str:
            return "keyed ok"

        with serving(eng, client, [hi]):
            ids = client.send_sync(inngest.Event(name="key/hi"))
            assert wait_run_for_event(eng, ids[0])["output"] == "keyed ok"

            async def via_mcp():
                async with Client(eng.url + "/mcp", read_timeout_seconds=30) as mcp:
                    return await mcp.call_tool("send_event", {"name": "key/hi"})
            sent = asyncio.run(asyncio.wait_for(via_mcp(), 60))
            assert not sent.is_error


def test_without_an_event_key_any_key_is_accepted(engine):
    r = httpx.post(engine.url + "/e/anything-at-all", json={"name": "key/any"})
    assert r.status_code == 200 and event_runs(engine, r.json()["ids"][0]) == []



ATTACK_PAGE = """<!doctype html><script>
window.done = false;
const engine = "%s";
const simple = (path, body) => fetch(engine + path, {method: "POST", mode: "no-cors",
  headers: {"content-type": "text/plain"}, body: body});
Promise.allSettled([
  simple("/e/key", JSON.stringify({name: "guard/browser"})),
  simple("/lab/v1/clock/advance", JSON.stringify({duration: "720h"})),
  simple("/lab/v1/reset", ""),
]).then(() => { window.done = true; });
</script>"""


@pytest.mark.browser
def test_a_page_on_another_origin_cannot_drive_the_engine_in_chromium(fresh_engine):
    """Finding 8 as it was seen. Chromium resolves ``evil.example`` to 127.0.0.1 (as DNS
    rebinding would): a page there sends simple (no preflight) requests to the engine, and a
    tab opens the engine itself under that name. Nothing changes and nothing is served; the
    same request from the engine's own page (the dashboard's origin) works."""
    from dashboard_helpers import CHROMIUM, CHROMIUM_ARGS, PAGE_TIMEOUT_MS, require_chromium
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse

    from lab_support.host import ThreadedHost

    require_chromium()
    from playwright.sync_api import sync_playwright

    engine = fresh_engine
    kept = httpx.post(engine.url + "/e/key", json={"name": "guard/kept"}).json()["ids"][0]
    before = clock_offset(engine)
    site = FastAPI()

    @site.get("/")
    def page():
        return HTMLResponse(ATTACK_PAGE % engine.url)

    rules = "--host-resolver-rules=MAP evil.example 127.0.0.1"
    with ThreadedHost(site) as other, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + [rules],
                                     headless=True, timeout=PAGE_TIMEOUT_MS)
        try:
            tab = browser.new_page()
            tab.set_default_timeout(PAGE_TIMEOUT_MS)
            tab.goto(f"http://evil.example:{other.port}/")
            tab.wait_for_function("window.done === true")
            assert clock_offset(engine) == before
            events = httpx.get(engine.url + "/v1/events").json()["data"]
            assert [e["internal_id"] for e in events] == [kept], events   # no reset, no event
            rebound = tab.goto(f"http://evil.example:{engine.port}/v1/events")
            assert rebound.status == 421 and "guard/kept" not in rebound.text()
            tab.goto(engine.url + "/")
            status = tab.evaluate("""async () => (await fetch("/e/key", {method: "POST",
                body: JSON.stringify({name: "guard/own-page"})})).status""")
            assert status == 200
        finally:
            browser.close()
    names = [e["name"] for e in httpx.get(engine.url + "/v1/events").json()["data"]]
    assert "guard/own-page" in names
