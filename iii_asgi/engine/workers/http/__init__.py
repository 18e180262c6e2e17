"""The engine's HTTP trigger server (builtins.md §3): trigger type ``http`` in namespace
``default``, served on its own port (``EngineConfig.http_port``, default 3111).

:class:`HttpTriggerProvider` mounts bindings on a :class:`Router`; :class:`HttpApp` is the raw
ASGI application that routes requests to functions. :class:`HttpWorker` wires both into an
engine and returns the listener that :class:`iii_asgi.engine.Engine` serves with uvicorn, whose
protocol is :class:`HttpProtocol` (httptools, one socket write per loop iteration).
"""

from __future__ import annotations

from .app import HttpApp
from .protocol import HttpProtocol
from .provider import HttpTriggerProvider
from .routing import Route, RouteConflict, Router
from .worker import HttpWorker

__all__ = [
    "HttpApp",
    "HttpProtocol",
    "HttpTriggerProvider",
    "HttpWorker",
    "Route",
    "RouteConflict",
    "Router",
]
