"""The console's front door, a plain ASGI middleware.

- ``Host`` must name the console itself: its port, and as host an IP literal, ``localhost``
  or the configured bind address. A DNS name pointing at the console (DNS rebinding) gets
  **400**.
- ``Origin``, when sent, must be the console's own origin (``http://`` + the ``Host``); a
  cross-site form post or fetch gets **403**.
- Requests other than GET/HEAD need the per-process token: the cookie set by opening the
  printed URL (``/?token=…``, answered with a redirect that drops it from the address bar), or
  the ``X-Console-Token`` header. Without it: **403**. Pages are readable without it (as the
  engine's worker port is), with the actions disabled.
- Every answer carries a strict Content-Security-Policy (scripts and connections to the
  console only, no framing) and ``Referrer-Policy: no-referrer``.
"""

from __future__ import annotations

import ipaddress
import secrets
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from ..types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from .worker import Console

__all__ = ["AUTHORIZED", "TOKEN_HEADER", "Guard", "cookie_name"]

TOKEN_HEADER = "x-console-token"
#: Scope key telling the pages whether the request carries the token.
AUTHORIZED = "iii_console.authorized"
SAFE_METHODS = frozenset({"GET", "HEAD"})
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)
_HEADERS = {
    "content-security-policy": CSP,
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}


def cookie_name(port: int | None) -> str:
    """Cookies ignore ports, so the name carries it: two consoles on one host keep theirs."""
    return f"iii_console_{port}"


def split_host(value: str) -> tuple[str, str]:
    """``("127.0.0.1", "3113")`` from ``127.0.0.1:3113``; ``[::1]:3113`` → ``("::1", …)``."""
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        return host, rest.removeprefix(":")
    host, _, port = value.rpartition(":")
    return (host, port) if host else (port, "")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class Guard:
    """``Guard(app, console)``: checks ``Host``, ``Origin`` and the token (module docstring)."""

    def __init__(self, app: ASGIApp, console: Console) -> None:
        self.app = app
        self.console = console

    def host_allowed(self, value: str | None) -> bool:
        if not value:
            return False
        host, port = split_host(value.lower())
        if port != str(self.console.port):
            return False
        return _is_ip(host) or host in ("localhost", self.console.core.config.host.lower())

    def token_ok(self, candidate: str | None) -> bool:
        return candidate is not None and secrets.compare_digest(
            candidate.encode(), self.console.token.encode()
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _with_headers(send, scope["path"])
        refusal = self.refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def refusal(self, scope: Scope) -> Response | None:
        """The response refusing this request, or ``None`` (then ``scope`` says whether it
        carries the token)."""
        headers = Headers(scope=scope)
        host = headers.get("host")
        if not self.host_allowed(host):
            return PlainTextResponse("Invalid Host header", status_code=400)
        origin = headers.get("origin")
        if origin is not None and origin.lower() != f"http://{host}".lower():
            return PlainTextResponse("Cross-origin request refused", status_code=403)
        cookie = _cookie(headers.get("cookie", ""), cookie_name(self.console.port))
        authorized = self.token_ok(cookie) or self.token_ok(headers.get(TOKEN_HEADER))
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        given = [value for key, value in query if key == "token"]
        if given and scope["method"] in SAFE_METHODS:
            if not self.token_ok(given[-1]):
                return PlainTextResponse("Wrong console token", status_code=403)
            rest = urlencode([(k, v) for k, v in query if k != "token"])
            path = scope["path"] if not scope["path"].startswith("//") else "/"
            response = RedirectResponse(path + (f"?{rest}" if rest else ""), 303)
            response.set_cookie(
                cookie_name(self.console.port),
                self.console.token,
                httponly=True,
                samesite="strict",
                path="/",
            )
            return response
        if scope["method"] not in SAFE_METHODS and not authorized:
            return PlainTextResponse(
                "This action needs the console token: open the console URL printed at startup "
                "(…/?token=…) or send the X-Console-Token header.",
                status_code=403,
            )
        scope[AUTHORIZED] = authorized
        return None


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def _with_headers(send: Send, path: str) -> Send:
    static = path.startswith("/static/")

    async def secured(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            for name, value in _HEADERS.items():
                headers[name] = value
            if not static:
                headers["cache-control"] = "no-store"
        await send(message)

    return secured
