"""The engine's HTTP trigger server (builtins.md §3): trigger type ``http`` in namespace
``default``, served on its own port (``EngineConfig.http_port``, default 3111).

:class:`HttpTriggerProvider` mounts bindings on a :class:`Router`; :class:`HttpApp` is the raw
ASGI application that routes requests to functions. :func:`install` wires both into an engine
core; :class:`iii_asgi.engine.Engine` serves the app with a second uvicorn server, whose protocol is
:class:`HttpProtocol` (uvicorn's httptools protocol, one socket write per loop iteration).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .app import HttpApp
from .protocol import HttpProtocol
from .provider import HttpTriggerProvider
from .routing import Route, RouteConflict, Router

if TYPE_CHECKING:
    from ..core import EngineCore

__all__ = [
    "HttpApp",
    "HttpProtocol",
    "HttpTriggerProvider",
    "Route",
    "RouteConflict",
    "Router",
    "install",
]


def install(core: EngineCore) -> HttpApp:
    """Register the ``http`` trigger type on ``core`` and return the app serving its routes."""
    router = Router()
    core.triggers.register_in_process("http", "HTTP API trigger", HttpTriggerProvider(router))
    return HttpApp(router, core.invoker, core.channels, core.config)
