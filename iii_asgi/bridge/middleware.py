"""``IIIMiddleware``: the bridge as a pure ASGI middleware (no ``BaseHTTPMiddleware``).

::

    app = Starlette(routes=[...])
    app.add_middleware(IIIMiddleware, url="ws://127.0.0.1:49134")
    # or, for any ASGI app:
    app = IIIMiddleware(app, url=...)

Lifespan scopes run the app's lifespan joined with the bridge's (see
:mod:`iii_asgi.bridge.lifespan`); HTTP and WebSocket scopes pass through, marked with the bridge
(``scope["iii_bridge"]``) so :func:`get_client` works in direct requests too.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from .plugin import IIIBridge

__all__ = ["IIIMiddleware"]


class IIIMiddleware:
    """``IIIMiddleware(app, bridge=None, **options)``: ``options`` are :class:`IIIBridge`'s
    arguments (``url``, ``worker_name``, filters, ``drain_timeout``, ...), used when no
    ``bridge`` is given. The bridge is ``middleware.bridge``."""

    def __init__(self, app: ASGIApp, bridge: IIIBridge | None = None, **options: Any) -> None:
        self.app = app
        if bridge is None:
            bridge = IIIBridge(_Unwrapped(app), **options)
        self.bridge = bridge

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            if "app" not in scope:
                scope["app"] = self  # what the driver calls: this middleware and below
            await self.bridge.lifespan(self.app, scope, receive, send)
            return
        scope["iii_bridge"] = self.bridge
        await self.app(scope, receive, send)


class _Unwrapped:
    """Hides ``add_middleware`` so a bridge made by the middleware does not install itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.root_path = getattr(app, "root_path", "")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
