"""``TestClient``: Starlette's test client, with every request going through the iii engine."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import warnings
from collections.abc import Generator, Sequence
from typing import Any, Literal

import anyio
from anyio.from_thread import BlockingPortal
from anyio.streams.stapled import StapledObjectStream
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..bridge import IIIBridge, IIIMiddleware
from ._engine import InProcessEngine

with warnings.catch_warnings():
    # Starlette asks for ``httpx2`` and warns when it falls back to ``httpx``; either works.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette import testclient as _starlette

__all__ = ["WEBSOCKET_ERROR", "TestClient"]

WEBSOCKET_ERROR = (
    "iii_asgi.testing.TestClient: the iii engine does not carry WebSockets (its http trigger "
    "serves HTTP requests only), so a WebSocket route cannot be tested through it; test it "
    "with starlette.testclient.TestClient(app)"
)


class TestClient(_starlette.TestClient):
    """A drop-in for ``starlette.testclient.TestClient`` / ``fastapi.testclient.TestClient``
    whose requests all go through an iii engine, on the code path of production::

        from iii_asgi.testing import TestClient

        def test_read_item():
            with TestClient(app) as client:          # runs the app's lifespan
                assert client.get("/items/1").json() == {"id": 1}

    Each request enters the engine's HTTP trigger server (route match, the §3.5 payload,
    the request and response channels), is invoked on the app's worker over the worker socket,
    and is served by the app through the bridge's ASGI driver; the engine, the worker and the
    app share one event loop in a background thread (an :class:`InProcessEngine`).

    The arguments are Starlette's (``base_url``, ``raise_server_exceptions``, ``root_path``,
    ``cookies``, ``headers``, ``follow_redirects``, ``client``; ``backend`` must be
    ``"asyncio"``), plus ``engine``: an :class:`InProcessEngine` to share (default: one of the
    client's own, started on first use, stopped on exit or ``close()``).

    - The app's own ``IIIBridge`` is used when it has one (pointed at the test engine while the
      client runs); any other app is wrapped in :class:`~iii_asgi.IIIMiddleware`.
    - As with Starlette's client, the lifespan runs only inside ``with``; outside it the bridge
      alone starts on the first request (the app's own startup does not run).
    - ``raise_server_exceptions=True`` re-raises, in the test, an exception the app raised
      while serving the request (background tasks included: the client waits for them, as
      Starlette's does).
    - ``websocket_connect`` raises ``RuntimeError``: the engine does not carry WebSockets.
    """

    __test__ = False

    def __init__(
        self,
        app: ASGIApp,
        base_url: str = "http://testserver",
        raise_server_exceptions: bool = True,
        root_path: str = "",
        backend: Literal["asyncio", "trio"] = "asyncio",
        backend_options: dict[str, Any] | None = None,
        cookies: Any = None,
        headers: dict[str, str] | None = None,
        follow_redirects: bool = True,
        client: tuple[str, int] = ("testclient", 50000),
        *,
        engine: InProcessEngine | None = None,
    ) -> None:
        if backend != "asyncio":
            raise ValueError("iii_asgi.testing.TestClient runs on asyncio (the engine's loop)")
        self.engine = engine or InProcessEngine()
        self._owns_engine = engine is None
        self._served, self.bridge, self._restore = _bridged(app)
        self._errors: list[BaseException] = []
        self._bare = False  # the bridge was started without the app's lifespan
        self._root_path = root_path
        super().__init__(
            _Front(self),
            base_url=base_url,
            raise_server_exceptions=raise_server_exceptions,
            root_path=root_path,
            backend=backend,
            backend_options=backend_options,
            cookies=cookies,
            headers=headers,
            follow_redirects=follow_redirects,
            client=client,
        )
        self.app = self._served  # what the lifespan runs

    # -- the engine, the bridge ------------------------------------------------------------------

    def _engine_portal(self) -> BlockingPortal:
        self.engine.start()
        assert self.engine.portal is not None
        bridge = self.bridge
        bridge.url = self.engine.url
        bridge.enabled = True
        bridge.wait_for_engine = False
        bridge.root_path = ""  # the engine routes the client's paths as they are
        bridge._scope_root = self._root_path  # the scope's root_path, as Starlette's client sets
        bridge._on_error = self._errors.append
        if bridge.options.otel is None:  # telemetry to a per-test engine would outlive it
            bridge.options = dataclasses.replace(bridge.options, otel={"enabled": False})
        return self.engine.portal

    @contextlib.contextmanager
    def _portal_factory(self) -> Generator[BlockingPortal, None, None]:
        if self.portal is not None:
            yield self.portal
            return
        portal = self._engine_portal()
        if not self._bare:  # outside ``with``: the bridge alone, started once
            portal.call(self._start_bare)
            self._bare = True
        yield portal

    async def _start_bare(self) -> None:
        self.bridge._prepare({"app": self._served, "state": self.app_state})
        await self.bridge.start()

    def __enter__(self) -> TestClient:
        portal = self._engine_portal()
        if self._bare:  # requests ran before ``with``: their bridge makes way for the lifespan
            portal.call(self.bridge.stop)
            self._bare = False
        with contextlib.ExitStack() as stack:
            self.portal = portal

            @stack.callback
            def reset_portal() -> None:
                self.portal = None

            send = anyio.create_memory_object_stream[Message | None](math.inf)
            receive = anyio.create_memory_object_stream[Message](math.inf)
            for channel in (*send, *receive):
                stack.callback(channel.close)
            self.stream_send = StapledObjectStream(*send)
            self.stream_receive = StapledObjectStream(*receive)
            self.task = portal.start_task_soon(self.lifespan)
            portal.call(self.wait_startup)

            @stack.callback
            def wait_shutdown() -> None:
                portal.call(self.wait_shutdown)

            stack.callback(self._transport.close)
            self.exit_stack = stack.pop_all()
        if not self.bridge.ready:
            self.__exit__(None, None, None)
            raise RuntimeError(
                "the app's lifespan startup failed (the iii bridge did not start): "
                f"{self.bridge.startup_error or 'see the log'}"
            )
        return self

    def __exit__(self, *args: Any) -> None:
        try:
            super().__exit__(*args)
        finally:
            self._shutdown()

    def close(self) -> None:
        """Stop the bridge (when started outside ``with``) and the client's own engine."""
        try:
            super().close()
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        if self._bare and self.engine.running:
            self.engine.call(self.bridge.stop)
        self._bare = False
        if self._owns_engine:
            self.engine.stop()
        self._restore()

    def websocket_connect(
        self, url: str, subprotocols: Sequence[str] | None = None, **kwargs: Any
    ) -> Any:
        """Raises ``RuntimeError``: the iii engine does not carry WebSockets."""
        raise RuntimeError(WEBSOCKET_ERROR)


class _Front:
    """What the Starlette transport calls, on the engine's loop: the engine's HTTP trigger
    server, then (the response sent) a wait for the app's work on the request, whose exception
    is raised here for the transport to re-raise (``raise_server_exceptions``)."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise RuntimeError(WEBSOCKET_ERROR)
        client = self.client
        client._errors.clear()
        await client.engine.http_app(scope, receive, send)
        await client.bridge.settle()
        if client._errors:
            error = client._errors[0]
            client._errors.clear()
            raise error


def _bridged(app: ASGIApp) -> tuple[ASGIApp, IIIBridge, Any]:
    """``(what to serve, its bridge, restore)``: the app's own ``IIIBridge`` (its settings put
    back by ``restore``), else the app wrapped in a new ``IIIMiddleware``."""
    for middleware in getattr(app, "user_middleware", ()):
        bridge = middleware.kwargs.get("bridge") if middleware.cls is IIIMiddleware else None
        if isinstance(bridge, IIIBridge):
            saved = {
                name: getattr(bridge, name)
                for name in (
                    "url",
                    "enabled",
                    "wait_for_engine",
                    "root_path",
                    "_scope_root",
                    "options",
                )
            }

            def restore(bridge: IIIBridge = bridge, saved: dict[str, Any] = saved) -> None:
                for name, value in saved.items():
                    setattr(bridge, name, value)
                bridge._on_error = None

            return app, bridge, restore
    wrapped = IIIMiddleware(app)
    return wrapped, wrapped.bridge, lambda: None
