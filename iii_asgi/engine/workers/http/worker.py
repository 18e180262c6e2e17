"""The ``iii-http`` worker (builtins.md §3): trigger type ``http`` and the HTTP trigger port."""

from __future__ import annotations

import functools

from ...core.worker import BuiltinWorker, EngineServices, Listener
from .app import HttpApp
from .limits import Connections, HttpLimits, default_max_connections
from .protocol import HttpProtocol
from .provider import HttpTriggerProvider
from .routing import Router

__all__ = ["HttpWorker"]


class HttpWorker(BuiltinWorker):
    """Registers trigger type ``http`` (in namespace ``default``) and serves its routes with
    :class:`HttpApp` on ``EngineConfig.http_host``:``http_port``, within the port's bounds
    (:class:`HttpLimits`, the connection cap :attr:`connections`)."""

    name = "iii-http"

    def __init__(self, core: EngineServices) -> None:
        self.core = core
        self.router = Router()
        self.app = HttpApp(self.router, core.invoker, core.channels, core.config)
        cap = core.config.http_max_connections
        self.connections = Connections(cap if cap is not None else default_max_connections())

    def install(self) -> None:
        provider = HttpTriggerProvider(self.router)
        self.core.triggers.register_in_process("http", "HTTP API trigger", provider)

    def listeners(self) -> list[Listener]:
        c = self.core.config
        protocol = functools.partial(
            HttpProtocol, limits=HttpLimits.from_config(c), connections=self.connections
        )
        options = {
            "http": protocol,  # httptools, bounded, one socket write per loop iteration
            "ws": "none",
            "server_header": False,
            "date_header": False,
            "proxy_headers": False,  # its middleware costs every request; loopback by default
            "timeout_keep_alive": c.http_keep_alive_timeout_ms / 1000,
        }
        return [Listener("http", self.app, c.http_host, c.http_port, options)]
