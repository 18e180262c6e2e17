"""Serving the engine with uvicorn: :class:`Engine` (on the running loop) and
:class:`EngineThread` (on its own loop in a background thread)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Coroutine, Generator
from typing import Any

import uvicorn

from .app import EngineApp
from .config import EngineConfig
from .core import EngineCore
from .http import HttpApp, HttpProtocol, install
from .stream_socket import StreamSocketApp
from .wsprotocol import ws_protocol

__all__ = ["Engine", "EngineThread"]

logger = logging.getLogger("iii_asgi.engine")


class _Server(uvicorn.Server):
    """uvicorn's server without signal capture (the embedding program owns the signals) and
    with a startup failure raised as ``OSError`` instead of ``sys.exit``."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def serve(self, sockets: list[Any] | None = None) -> None:
        try:
            await super().serve(sockets)
        except SystemExit as exc:
            raise OSError(f"uvicorn failed to start (exit status {exc.code})") from None


class Engine:
    """An embedded iii engine served by uvicorn on the running event loop.

    Example::

        engine = Engine(EngineConfig(host="127.0.0.1", port=0))
        await engine.start()          # returns once listening
        print(engine.url)             # "ws://127.0.0.1:<port>"
        print(engine.http_url)        # "http://127.0.0.1:3111" (the HTTP trigger server)
        print(engine.stream_url)      # "ws://127.0.0.1:3112" (the stream socket)
        await engine.stop()           # closes every worker socket, runs each teardown

    ``start()`` raises ``RuntimeError`` when uvicorn cannot bind a port.
    """

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self.core: EngineCore | None = None
        self.port: int | None = None
        self.http_port: int | None = None
        self.http_app: HttpApp | None = None
        self._server: _Server | None = None
        self._serve_task: asyncio.Task[None] | None = None
        self._http_server: _Server | None = None
        self._http_task: asyncio.Task[None] | None = None
        self.stream_port: int | None = None
        self._stream_server: _Server | None = None
        self._stream_task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """``ws://host:port`` of the worker listener (the real port when configured with 0)."""
        if self.port is None:
            raise RuntimeError("engine is not started")
        return _url("ws", self.config.host, self.port)

    @property
    def http_url(self) -> str:
        """``http://host:port`` of the HTTP trigger server (the real port when configured
        with 0). Raises ``RuntimeError`` when not started or configured without one."""
        if self.http_port is None:
            raise RuntimeError("the HTTP trigger server is not running")
        return _url("http", self.config.http_host, self.http_port)

    @property
    def stream_url(self) -> str:
        """``ws://host:port`` of the client-facing stream WebSocket (builtins.md §6.4; the real
        port when configured with 0). Raises ``RuntimeError`` when not running."""
        if self.stream_port is None:
            raise RuntimeError("the stream socket is not running")
        return _url("ws", self.config.stream_host, self.stream_port)

    def stream_uvicorn_config(self, app: StreamSocketApp) -> uvicorn.Config:
        c = self.config
        return uvicorn.Config(
            app,
            host=c.stream_host,
            port=c.stream_port or 0,
            ws=c.ws,
            ws_max_size=c.max_message_size,
            ws_per_message_deflate=False,
            lifespan="off",
            log_level=c.log_level,
            access_log=False,
            timeout_graceful_shutdown=c.timeout_graceful_shutdown_s,
        )

    def http_uvicorn_config(self, app: HttpApp) -> uvicorn.Config:
        c = self.config
        return uvicorn.Config(
            app,
            host=c.http_host,
            port=c.http_port or 0,
            http=HttpProtocol,  # httptools, one socket write per loop iteration
            ws="none",
            lifespan="off",
            log_level=c.log_level,
            access_log=False,
            server_header=False,
            date_header=False,
            proxy_headers=False,  # its middleware costs every request; loopback by default
            timeout_graceful_shutdown=c.timeout_graceful_shutdown_s,
        )

    def uvicorn_config(self, app: EngineApp) -> uvicorn.Config:
        c = self.config
        return uvicorn.Config(
            app,
            host=c.host,
            port=c.port,
            ws=ws_protocol(c.ws),  # websockets-sansio: one socket write per loop iteration
            ws_max_size=c.max_message_size,
            ws_per_message_deflate=False,  # loopback: compression costs 10–23 %
            ws_ping_interval=None,  # the real engine never pings; it answers pings (§1.7)
            lifespan="off",
            log_level=c.log_level,
            access_log=False,
            timeout_graceful_shutdown=c.timeout_graceful_shutdown_s,
        )

    async def start(self) -> None:
        """Start serving on the running loop; returns when the socket is listening."""
        if self._serve_task is not None:
            raise RuntimeError("engine already started")
        self.core = EngineCore(self.config)
        http_app = install(self.core) if self.config.http_port is not None else None
        self.http_app = http_app
        server = _Server(self.uvicorn_config(EngineApp(self.core)))
        self._server = server
        try:
            await self.core.start()
        except Exception:
            await self.core.shutdown()
            raise
        self._serve_task = await self._serve(server, self.config.host, self.config.port)
        self.port = server.servers[0].sockets[0].getsockname()[1]
        if http_app is not None:
            self._http_server = http_server = _Server(self.http_uvicorn_config(http_app))
            self._http_task, self.http_port = await self._serve_extra(
                http_server, self.config.http_host, self.config.http_port
            )
        if self.config.stream_port is not None:
            stream_app = StreamSocketApp(self.core.streams)
            self._stream_server = stream_server = _Server(self.stream_uvicorn_config(stream_app))
            self._stream_task, self.stream_port = await self._serve_extra(
                stream_server, self.config.stream_host, self.config.stream_port
            )

    async def _serve_extra(
        self, server: _Server, host: str, port: int | None
    ) -> tuple[asyncio.Task[None], int]:
        """Serve one more listener of a started engine (HTTP triggers, streams): its task and
        bound port. When it fails to start, the whole engine stops and ``RuntimeError`` is
        raised."""
        try:
            task = await self._serve(server, host, port)
        except RuntimeError:
            await self.stop()
            raise
        port_bound: int = server.servers[0].sockets[0].getsockname()[1]
        return task, port_bound

    async def _serve(self, server: _Server, host: str, port: int | None) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(server.serve())
        while not server.started:
            if task.done():
                if self.core is not None and server is self._server:
                    await self.core.shutdown()
                    self._serve_task = None
                exc = task.exception() if not task.cancelled() else None
                raise RuntimeError(f"engine failed to start on {host}:{port}") from exc
            await asyncio.sleep(0.005)
        return task

    async def stop(self) -> None:
        """Close every worker socket, run teardowns, stop uvicorn. Idempotent."""
        if self._serve_task is None or self._server is None or self.core is None:
            return
        http_server, http_task = self._http_server, self._http_task
        self._http_server = self._http_task = None
        self.http_port = None
        stream_server, stream_task = self._stream_server, self._stream_task
        self._stream_server = self._stream_task = None
        self.stream_port = None
        if http_server is not None:
            http_server.should_exit = True  # stop accepting; requests in flight end below
        if stream_server is not None:
            stream_server.should_exit = True
        await self.core.shutdown()  # in-flight calls fail (invocation_stopped), channels close
        if http_task is not None:
            await http_task
        if stream_task is not None:
            await stream_task
        self._server.should_exit = True
        await self._serve_task
        self._serve_task = None

    async def serve_forever(self) -> None:
        """Start, then wait until uvicorn stops (e.g. after ``stop()`` or a signal)."""
        await self.start()
        assert self._serve_task is not None
        await asyncio.shield(self._serve_task)


class EngineThread:
    """The same engine on its own event loop in a daemon thread, for synchronous code.

    Example::

        with EngineThread(EngineConfig(port=0)) as engine:
            connect_worker(engine.url)

    ``start()`` (called by ``__enter__``) blocks until listening; ``stop()`` blocks until
    everything is closed.
    """

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.engine = Engine(config)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def config(self) -> EngineConfig:
        return self.engine.config

    @property
    def core(self) -> EngineCore:
        assert self.engine.core is not None
        return self.engine.core

    @property
    def url(self) -> str:
        return self.engine.url

    @property
    def port(self) -> int | None:
        return self.engine.port

    @property
    def http_url(self) -> str:
        return self.engine.http_url

    @property
    def stream_url(self) -> str:
        return self.engine.stream_url

    def start(self) -> EngineThread:
        loop = _new_loop()
        self.loop = loop
        ready = threading.Event()
        self._thread = threading.Thread(
            target=_run_loop, args=(loop, ready), name="iii-engine", daemon=True
        )
        self._thread.start()
        ready.wait()
        try:
            self.run(self.engine.start())
        except BaseException:
            self._stop_loop()
            raise
        return self

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float | None = 30.0) -> Any:
        """Run a coroutine on the engine's loop and return its result (blocking)."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call_soon(self, fn: Any, *args: Any) -> None:
        assert self.loop is not None
        self.loop.call_soon_threadsafe(fn, *args)

    def stop(self) -> None:
        if self.loop is None:
            return
        try:
            self.run(self.engine.stop())
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        loop, thread = self.loop, self._thread
        self.loop = None
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(10)
        if loop is not None and not loop.is_running():
            loop.close()

    def __enter__(self) -> EngineThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _url(scheme: str, host: str, port: int) -> str:
    """``scheme://host:port``, an IPv6 ``host`` in brackets."""
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def _run_loop(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    loop.call_soon(ready.set)
    loop.run_forever()
