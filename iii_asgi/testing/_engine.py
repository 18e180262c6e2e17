"""An embedded engine on an event loop of its own, for tests (:class:`InProcessEngine`)."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from anyio.from_thread import BlockingPortal

from ..engine import EngineConfig, EngineThread
from ..engine.workers.http.app import HttpApp

__all__ = ["InProcessEngine", "engine_config"]

T = TypeVar("T")


def engine_config(**options: Any) -> EngineConfig:
    """The test engine's configuration: every port ephemeral on 127.0.0.1, short timers, no
    CORS layer (an app's own CORS middleware answers as it does under uvicorn) and every
    ``Host`` allowed (``testserver``; an app's ``TrustedHostMiddleware`` decides);
    ``options`` override any :class:`~iii_asgi.engine.EngineConfig` field."""
    defaults: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "http_port": 0,
        "http_cors": None,
        "http_allowed_hosts": ["*"],
        "registration_grace_ms": 500,
        "functions_poll_interval_s": 0.2,
    }
    return EngineConfig(**{**defaults, **options})


class InProcessEngine(EngineThread):
    """The embedded engine on its own event loop in a daemon thread (an
    :class:`~iii_asgi.engine.EngineThread`), with an anyio
    :class:`~anyio.from_thread.BlockingPortal` into that loop (what ``TestClient`` runs the
    app on)::

        with InProcessEngine() as engine:
            client = iii.register_worker(engine.url)

    ``url``: the worker socket (``ws://127.0.0.1:<port>``); ``http_url``: the HTTP trigger
    port; ``http_app``: the HTTP trigger server's ASGI app. ``start()`` blocks until
    listening and may follow a ``stop()``; both are idempotent.
    """

    __test__ = False

    def __init__(self, config: EngineConfig | None = None) -> None:
        super().__init__(config or engine_config())
        self.portal: BlockingPortal | None = None
        self._portal_done: concurrent.futures.Future[None] | None = None

    @property
    def http_app(self) -> HttpApp:
        app = self.engine.http_app
        if app is None:
            raise RuntimeError("the engine runs no HTTP trigger server (http_port=None)")
        return app

    @property
    def running(self) -> bool:
        return self.loop is not None

    def start(self) -> InProcessEngine:
        if self.loop is not None:
            return self
        super().start()
        assert self.loop is not None
        ready: concurrent.futures.Future[BlockingPortal] = concurrent.futures.Future()

        async def serve_portal() -> None:
            async with BlockingPortal() as portal:
                ready.set_result(portal)
                await portal.sleep_until_stopped()

        self._portal_done = asyncio.run_coroutine_threadsafe(serve_portal(), self.loop)
        self.portal = ready.result(30)
        return self

    def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``await fn(*args)`` on the engine's loop and return its result (blocking)."""
        if self.portal is None:
            raise RuntimeError("the engine is not started")
        return self.portal.call(fn, *args)

    def stop(self) -> None:
        portal, done = self.portal, self._portal_done
        self.portal = self._portal_done = None
        if portal is not None:
            portal.call(portal.stop, True)
        if done is not None:
            done.result(30)
        super().stop()

    def __enter__(self) -> InProcessEngine:
        return self.start()
