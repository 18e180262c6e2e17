"""iii-asgi: the ASGI side of the iii Python SDK.

- The bridge (``iii_asgi.bridge``): ``IIIBridge(app)`` puts an ASGI app's routes behind the
  engine's http triggers, served on the app's own event loop; ``IIIMiddleware`` is the same as a
  pure ASGI middleware; ``IIIClient`` / ``Invocation`` are FastAPI dependencies. See
  ``docs/bridge.md``.
- ``WorkerApp``: a pure iii worker as an ASGI app (``uvicorn mymodule:app``) with ``/healthz``
  and ``/readyz`` (``iii_asgi.worker_app``, ``docs/serving.md``).
- ``iii_asgi.engine``: an embedded, wire-compatible iii engine served by uvicorn
  (``iii_asgi.engine.Engine``).

The bridge names load on first use, so ``import iii_asgi.engine`` does not import FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .bridge import (
        BridgeRoute,
        IIIBridge,
        IIIClient,
        IIIMiddleware,
        Invocation,
        InvocationInfo,
        RouteCollisionError,
        get_client,
        get_invocation,
        route_options,
    )
    from .worker_app import WorkerApp

__all__ = [
    "BridgeRoute",
    "IIIBridge",
    "IIIClient",
    "IIIMiddleware",
    "Invocation",
    "InvocationInfo",
    "RouteCollisionError",
    "WorkerApp",
    "get_client",
    "get_invocation",
    "route_options",
]


def __getattr__(name: str) -> Any:
    if name == "WorkerApp":
        from .worker_app import WorkerApp

        return WorkerApp
    if name in __all__:
        from . import bridge

        return getattr(bridge, name)
    raise AttributeError(f"module 'iii_asgi' has no attribute {name!r}")
