"""Which requests the engine serves at all: the Host must name this engine, and a browser
request must come from the engine's own pages.

* **Host** (DNS rebinding): a page on ``evil.example`` whose name resolves to 127.0.0.1
  would otherwise read runs and send events with the learner's browser. The Host header must
  be a loopback name (``127.0.0.1``, ``localhost``, ``[::1]``, any port), the address the
  engine is bound to, or a host given with ``--allow-host``. 421 otherwise.
* **Origin** (cross-site requests): browsers name the page that makes a request in
  ``Origin``. When it is present it must be a page of an allowed host (``http://<allowed
  host>:<any port>``: the dashboard, JupyterLab on loopback) or one given with
  ``--allow-origin``; 403 otherwise, so a web page elsewhere can neither read nor change
  anything. The SDK, curl, httpx and MCP clients send no ``Origin`` and are not affected.

The policy is the one the ``mcp`` package applies to its own HTTP transport on loopback (its
``TransportSecuritySettings`` / ``TransportSecurityMiddleware`` with DNS-rebinding protection
on), built once here and used for every route, the ``/mcp`` mount included. The Worker host
(``chat_agent.http_guard``) applies the same rule.
"""

from __future__ import annotations

from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
WILDCARD_BINDS = ("0.0.0.0", "::", "")


def _host_name(host: str) -> str:
    host = host.strip()
    if ":" in host and not host.startswith("["):
        return f"[{host}]"                  # a bare IPv6 address, as a Host header writes it
    return host


def security_settings(bind_host: str = "127.0.0.1",
                      allow_hosts: tuple[str, ...] = (),
                      allow_origins: tuple[str, ...] = ()) -> TransportSecuritySettings:
    names = list(LOOPBACK_HOSTS)
    if bind_host not in WILDCARD_BINDS and _host_name(bind_host) not in names:
        names.append(_host_name(bind_host))
    names += [_host_name(h) for h in allow_hosts if _host_name(h) not in names]
    hosts = [f"{name}:*" for name in names] + names      # with a port, or without (port 80)
    origins = [f"http://{name}:*" for name in names] + [f"http://{name}" for name in names]
    origins += list(allow_origins)
    return TransportSecuritySettings(enable_dns_rebinding_protection=True,
                                     allowed_hosts=hosts, allowed_origins=origins)


class RequestGuard:
    """ASGI middleware: refuse a foreign Host (421) or Origin (403) with a JSON message."""

    def __init__(self, app: ASGIApp, settings: TransportSecuritySettings) -> None:
        self.app = app
        self.settings = settings
        self.checker = TransportSecurityMiddleware(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        refused = await self.checker.validate_request(request, is_post=False)
        if refused is None:
            await self.app(scope, receive, send)
            return
        if refused.status_code == 421:
            message = (f"Host {request.headers.get('host')!r} is not this engine: use "
                       "127.0.0.1 or localhost, or start the engine with --allow-host NAME")
        else:
            message = (f"cross-origin request refused: Origin "
                       f"{request.headers.get('origin')!r} is not this engine's own page "
                       "(start the engine with --allow-origin ORIGIN to allow it)")
        await JSONResponse({"error": message, "status": refused.status_code},
                           status_code=refused.status_code)(scope, receive, send)
