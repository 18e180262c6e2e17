"""The console as a component of the engine: its token, its rate sampler and its listener."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from typing import TYPE_CHECKING

from ..core.worker import BuiltinWorker, Listener
from .live import Rates

if TYPE_CHECKING:
    from ..core.engine import EngineCore
    from ..server import EngineWorkers

__all__ = ["Console"]


class Console(BuiltinWorker):
    """The dev console of one engine (docs/console.md), composed by :func:`compose
    <iii_asgi.engine.server.compose>` when ``EngineConfig.console_port`` is set.

    It reads the core and the built-in workers in-process and calls functions through the
    core's invoker, as a worker's call would. ``token`` is this process's secret for mutating
    actions; ``login_url`` carries it (printed at startup). Its listener is not required: a
    port already in use is logged and the engine runs without a console.
    """

    name = "iii-console"

    def __init__(self, core: EngineCore, workers: EngineWorkers) -> None:
        self.core = core
        self.workers = workers
        self.token = secrets.token_urlsafe(24)
        self.rates = Rates(core.invoker)
        #: Set by :meth:`stop`: live streams end so that uvicorn can shut down at once.
        self.closing = asyncio.Event()
        self.listener: Listener | None = None
        self._sampler: asyncio.Task[None] | None = None

    @property
    def port(self) -> int | None:
        """The bound port (``None`` until served)."""
        return self.listener.bound_port if self.listener is not None else None

    @property
    def url(self) -> str:
        """``http://host:port/`` (``RuntimeError`` until served)."""
        if self.port is None:
            raise RuntimeError("the console is not running")
        host = self.core.config.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/"

    @property
    def login_url(self) -> str:
        """The console URL with ``?token=``: opening it enables the mutating actions."""
        return f"{self.url}?token={self.token}"

    async def start(self) -> None:
        self.closing.clear()
        self._sampler = asyncio.get_running_loop().create_task(self.rates.run(self.closing))

    async def stop(self) -> None:
        self.closing.set()
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
            self._sampler = None

    def listeners(self) -> list[Listener]:
        from .app import build_app  # the web app (Starlette, Jinja2) only when served

        config = self.core.config
        options = {"ws": "none", "server_header": False, "proxy_headers": False}
        self.listener = Listener(
            "console", build_app(self), config.host, config.console_port, options, required=False
        )
        return [self.listener]
