"""Browser origins on the engine's WebSocket listeners (docs/rbac.md, "Browser origins").

A web page can open a WebSocket to any address, loopback included, and its browser sends the
page's ``Origin`` with the upgrade request. Every WebSocket route of the engine (worker ``/``,
``/otel``, ``/ws/channels/{id}``, the stream socket) refuses an upgrade that carries an
``Origin`` outside the listener's allowed origins with HTTP 403, before accepting it (the ASGI
WebSocket Denial Response extension). Clients that send no ``Origin`` (the SDKs, Node, curl)
are not affected.
"""

from __future__ import annotations

from collections.abc import Iterable

from iii_asgi._asgi import TEXT, send_response

from .types import Scope, Send

__all__ = ["OriginPolicy", "refuse_origin"]


def _normal(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


class OriginPolicy:
    """``OriginPolicy(allowed)``: origins such as ``https://app.example`` or
    ``http://localhost:5173`` (compared case-insensitively, a trailing ``/`` ignored); ``*``
    allows any origin. Empty (the default): no browser page may connect."""

    __slots__ = ("allowed", "any")

    def __init__(self, allowed: Iterable[str] = ()) -> None:
        allowed = list(allowed)
        self.any = "*" in allowed
        self.allowed = frozenset(_normal(o) for o in allowed if o != "*")

    def allows(self, scope: Scope) -> bool:
        """Whether the upgrade request in ``scope`` may proceed: it has no ``Origin`` header,
        or one that is allowed."""
        for name, value in scope.get("headers", ()):
            if name == b"origin":
                return self.any or _normal(value.decode("latin-1")) in self.allowed
        return True


async def refuse_origin(send: Send) -> None:
    """Refuse a WebSocket upgrade with ``403 Forbidden`` (plain text) instead of accepting it."""
    body = b"Forbidden: this Origin may not open engine WebSockets (allowed_origins)"
    await send_response(send, 403, body, TEXT, "websocket.http.response")
