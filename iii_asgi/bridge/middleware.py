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

from .plugin import IIIMiddleware

__all__ = ["IIIMiddleware"]
