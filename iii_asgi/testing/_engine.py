"""An embedded engine on an event loop of its own, for tests (:class:`InProcessEngine`)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from anyio.from_thread import BlockingPortal

from ..engine import Engine, EngineConfig
from ..engine.workers.http.app import HttpApp

__all__ = ["InProcessEngine", "engine_config"]

T = TypeVar("T")


def engine_config(**options: Any) -> EngineConfig:
    """The test engine's configuration: every port ephemeral on 127.0.0.1, short timers, and
    no CORS layer (an app's own CORS middleware answers as it does under uvicorn);
    ``options`` override any :class:`~iii_asgi.engine.EngineConfig` field."""
    defaults: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "http_port": 0,
        "http_cors": None,
        "registration_grace_ms": 500,
        "functions_poll_interval_s": 0.2,
    }
    return EngineConfig(**{**defaults, **options})


class InProcessEngine:
    """The embedded engine on its own event loop in a daemon thread, reachable through an
    anyio :class:`~anyio.from_thread.BlockingPortal` (what ``TestClient`` runs the app on)::

        with InProcessEngine() as engine:
            client = iii.register_worker(engine.url)

    ``url``: the worker socket (``ws://127.0.0.1:<port>``); ``http_url``: the HTTP trigger
    port; ``http_app``: the HTTP trigger server's ASGI app (what ``TestClient`` calls, on
    :attr:`portal`). ``start()`` blocks until listening; ``stop()`` until closed.
    """

    __test__ = False

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config or engine_config()
        self.engine = Engine(self.config)
        self.portal: BlockingPortal | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return self.engine.url

    @property
    def http_url(self) -> str:
        return self.engine.http_url

    @property
    def http_app(self) -> HttpApp:
        app = self.engine.http_app
        if app is None:
            raise RuntimeError("the engine runs no HTTP trigger server (http_port=None)")
        return app

    @property
    def running(self) -> bool:
        return self.portal is not None

    def start(self) -> InProcessEngine:
        """Start the loop thread and the engine on it (idempotent)."""
        if self.portal is not None:
            return self
        ready: concurrent.futures.Future[BlockingPortal] = concurrent.futures.Future()

        async def main() -> None:
            async with BlockingPortal() as portal:
                ready.set_result(portal)
                await portal.sleep_until_stopped()

        def run() -> None:
            try:
                asyncio.run(main())
            except BaseException as exc:  # pragma: no cover - the loop itself failed
                if not ready.done():
                    ready.set_exception(exc)

        self._thread = threading.Thread(target=run, name="iii-test-engine", daemon=True)
        self._thread.start()
        self.portal = ready.result(30)
        try:
            self.portal.call(self.engine.start)
        except BaseException:
            self._stop_portal()
            raise
        return self

    def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``await fn(*args)`` on the engine's loop and return its result (blocking)."""
        if self.portal is None:
            raise RuntimeError("the engine is not started")
        return self.portal.call(fn, *args)

    def stop(self) -> None:
        """Stop the engine and its loop thread (idempotent)."""
        if self.portal is None:
            return
        try:
            self.portal.call(self.engine.stop)
        finally:
            self._stop_portal()

    def _stop_portal(self) -> None:
        portal, thread = self.portal, self._thread
        self.portal = self._thread = None
        if portal is not None:
            portal.call(portal.stop, True)
        if thread is not None:
            thread.join(30)

    def __enter__(self) -> InProcessEngine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
