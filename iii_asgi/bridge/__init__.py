"""The ASGI bridge: an ASGI app's routes as iii functions, served on the app's own event loop.

- :class:`IIIBridge` (:mod:`.plugin`): ``IIIBridge(app)``, the one line for FastAPI/Starlette.
- :class:`IIIMiddleware` (:mod:`.middleware`): the same as a pure ASGI middleware.
- :mod:`.lifespan`: joining the app's own lifespan; :mod:`.routes`: the route table and path
  syntax (:mod:`.paths`, :mod:`.walk`); :mod:`.registration`: the table on the engine, kept
  in step (``bridge.sync()``); :mod:`.driver` (and :mod:`.scope`): engine invocation →
  ``scope`` / ``receive`` / ``send``;
  :mod:`.dependencies`: ``IIIClient`` and ``Invocation`` for routes.
"""

from .dependencies import (
    IIIClient,
    Invocation,
    InvocationInfo,
    bridge_of,
    get_client,
    get_invocation,
)
from .middleware import IIIMiddleware
from .plugin import IIIBridge
from .registration import SyncResult
from .routes import BridgeRoute, RouteCollisionError, asgi_path, engine_paths, route_options

__all__ = [
    "BridgeRoute",
    "IIIBridge",
    "IIIClient",
    "IIIMiddleware",
    "Invocation",
    "InvocationInfo",
    "RouteCollisionError",
    "SyncResult",
    "asgi_path",
    "bridge_of",
    "engine_paths",
    "get_client",
    "get_invocation",
    "route_options",
]
