"""The composition module: :class:`Engine` is built here from :class:`EngineConfig` (the core
plus every built-in worker) and served by uvicorn on the running loop; :class:`EngineThread`
runs it on its own loop in a background thread.

This is the only module that knows every worker (docs/engine.md, "Layout").
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
from collections.abc import Coroutine, Generator
from dataclasses import dataclass
from typing import Any

import uvicorn

from .adapters import Backends
from .config.engine import EngineConfig
from .console import Console
from .core.engine import EngineCore
from .core.worker import BuiltinWorker, Listener
from .storage import Storage
from .workers.cron.worker import Cron
from .workers.exec.worker import ExecWorker
from .workers.http.app import HttpApp
from .workers.http.worker import HttpWorker
from .workers.http_functions.worker import HttpFunctions
from .workers.observability.worker import ObservabilityWorker
from .workers.pubsub.worker import PubSub
from .workers.queue.worker import Queues
from .workers.state.worker import StateWorker
from .workers.stream.worker import StreamWorker
from .workers.worker_manager.app import TelemetryEndpoint
from .workers.worker_manager.worker import WorkerManager

__all__ = ["Engine", "EngineThread", "EngineWorkers", "compose"]

logger = logging.getLogger("iii_asgi.engine")


@dataclass
class EngineWorkers:
    """The built-in workers of one engine, by config name (``iii-`` dropped, ``-`` as ``_``),
    their adapters (``backends``: local or Redis, per worker) and the engine's local storage
    (``storage``: the state, stream and queue workers' store unless their adapter is Redis)."""

    storage: Storage
    backends: Backends
    http_functions: HttpFunctions
    state: StateWorker
    observability: ObservabilityWorker
    stream: StreamWorker
    queue: Queues
    pubsub: PubSub
    cron: Cron
    http: HttpWorker | None
    worker_manager: WorkerManager
    exec: ExecWorker | None = None
    #: The dev console (not a config.yaml worker), with ``console_port``.
    console: Console | None = None

    def all(self) -> list[BuiltinWorker]:
        """Every worker, in installation order."""
        workers: list[BuiltinWorker | None] = [
            self.console,
            self.http_functions,
            self.state,
            self.observability,
            self.stream,
            self.queue,
            self.pubsub,
            self.cron,
            self.http,
            self.worker_manager,
            self.exec,
        ]
        return [w for w in workers if w is not None]


def compose(config: EngineConfig) -> tuple[EngineCore, EngineWorkers]:
    """Build the core and install every built-in worker ``config`` enables (the ``http``
    trigger type only with an ``http_port``), each on the adapter its config names."""
    core = EngineCore(config)
    observability = ObservabilityWorker(core)
    backends = Backends(config)
    state, stream = backends.state, backends.stream
    http_functions = HttpFunctions(config)
    if config.http_functions_enabled:
        core.function_preparer = http_functions
    telemetry = TelemetryEndpoint(observability.store.ingest, observability.serve_socket)
    workers = EngineWorkers(
        storage=backends.local.storage,
        backends=backends,
        http_functions=http_functions,
        state=StateWorker(core, state.storage, state.events("state")),
        observability=observability,
        stream=StreamWorker(core, stream.storage, stream.events("stream")),
        queue=Queues(core, backends.queue.storage, backends.queue.queue_cluster()),
        pubsub=PubSub(core, backends.pubsub.events("pubsub")),
        cron=Cron(core, backends.cron.cron_lock(config.cron_lock_ttl_ms)),
        http=HttpWorker(core) if config.http_port is not None else None,
        worker_manager=WorkerManager(core, telemetry),
        exec=ExecWorker(core) if config.exec_commands else None,
    )
    if config.console_port is not None:
        workers.console = Console(core, workers)
    for worker in workers.all():
        core.add_worker(worker)
    return core, workers


#: Set in the task serving one of the engine's listeners (:class:`_Server`).
_engine_listener: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "iii_engine_listener", default=False
)
#: uvicorn's per-server lifecycle lines (``uvicorn.error`` at INFO): once per listener they
#: only repeat what the engine prints itself ("iii engine listening on ..."), and beside an
#: app served by uvicorn (``iii-asgi run``) they read as that app's own lines, four times over.
_LIFECYCLE = frozenset(
    {"Started server process [%d]", "Finished server process [%d]", "Shutting down"}
)


class _QuietListeners(logging.Filter):
    """Drops uvicorn's lifecycle lines logged by the engine's own listeners; every other line
    (errors, the app's own server) passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _engine_listener.get():
            return True
        msg = record.msg
        return not (
            isinstance(msg, str) and (msg in _LIFECYCLE or msg.startswith("Uvicorn running on "))
        )


_QUIET_LISTENERS = _QuietListeners()


class _Server(uvicorn.Server):
    """uvicorn's server without signal capture (the embedding program owns the signals), with
    a startup failure raised as ``OSError`` instead of ``sys.exit``, and without uvicorn's
    lifecycle lines (:class:`_QuietListeners`)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def serve(self, sockets: list[Any] | None = None) -> None:
        _engine_listener.set(True)  # this task only: its context is its own copy
        uvicorn_logger = logging.getLogger("uvicorn.error")
        if _QUIET_LISTENERS not in uvicorn_logger.filters:
            uvicorn_logger.addFilter(_QUIET_LISTENERS)
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
        self.workers: EngineWorkers | None = None
        self.listeners: dict[str, Listener] = {}
        self._started = False

    def _bound(self, name: str) -> int | None:
        listener = self.listeners.get(name)
        return listener.bound_port if listener is not None else None

    @property
    def port(self) -> int | None:
        """The worker listener's bound port (``None`` until started)."""
        return self._bound("worker")

    @property
    def worker_urls(self) -> list[str]:
        """``ws://host:port`` of every worker listener, in ``EngineConfig.listener_configs()``
        order: the main one first, then each of ``worker_listeners`` (e.g. the RBAC port).
        Raises ``RuntimeError`` when not started."""
        if self.workers is None or self.port is None:
            raise RuntimeError("engine is not started")
        urls = []
        for worker_listener in self.workers.worker_manager.worker_listeners:
            port = self._bound(worker_listener.name)
            if port is None:
                raise RuntimeError("engine is not started")
            urls.append(_url("ws", worker_listener.config.host, port))
        return urls

    @property
    def http_port(self) -> int | None:
        """The HTTP trigger port (``None`` until started or without one)."""
        return self._bound("http")

    @property
    def stream_port(self) -> int | None:
        """The stream socket's port (``None`` until started or without one)."""
        return self._bound("stream")

    @property
    def http_app(self) -> HttpApp | None:
        """The HTTP trigger server's ASGI app (``None`` without an HTTP port)."""
        http = self.workers.http if self.workers is not None else None
        return http.app if http is not None else None

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

    @property
    def console_port(self) -> int | None:
        """The dev console's port (``None`` until started, without one, or when its port could
        not be bound)."""
        return self._bound("console")

    @property
    def console_url(self) -> str:
        """``http://host:port/`` of the dev console (docs/console.md); raises
        ``RuntimeError`` when it is not served. Its actions need the token in
        ``engine.workers.console.login_url``."""
        if self.console_port is None:
            raise RuntimeError("the console is not running")
        return _url("http", self.config.host, self.console_port) + "/"

    def uvicorn_config(self, listener: Listener) -> uvicorn.Config:
        """The uvicorn config serving ``listener`` (its options over the engine's common ones:
        no lifespan, no access log, the engine's log level and graceful-shutdown timeout)."""
        c = self.config
        options: dict[str, Any] = {
            "lifespan": "off",
            "log_level": c.log_level,
            "access_log": False,
            "timeout_graceful_shutdown": c.timeout_graceful_shutdown_s,
            **listener.options,
        }
        return uvicorn.Config(listener.app, host=listener.host, port=listener.port or 0, **options)

    async def start(self) -> None:
        """Build the engine, open its storage, start the core and workers, then serve every
        listener (the worker socket first); returns when all are listening. Raises
        ``RuntimeError`` when a port cannot be bound (everything started is stopped) and
        :class:`~iii_asgi.engine.storage.StorageError` when a store cannot be opened (e.g.
        Redis is unreachable)."""
        if self._started:
            raise RuntimeError("engine already started")
        self.core, self.workers = core, workers = compose(self.config)
        try:
            await workers.backends.open()
            await core.start()
        except Exception:
            await core.shutdown()
            await workers.backends.close()
            raise
        self._started = True
        for worker in reversed(workers.all()):  # the worker manager is last: served first
            for listener in worker.listeners():
                await self._serve(listener)
        scheme = {"http": "http"}
        urls = {
            name: _url(scheme.get(name, "ws"), listener.host, listener.bound_port or 0)
            for name, listener in self.listeners.items()
        }
        for worker in workers.all():
            await worker.serving(urls)

    async def _serve(self, listener: Listener) -> None:
        """Serve one listener; when it fails to start, the whole engine stops and
        ``RuntimeError`` is raised."""
        server = _Server(self.uvicorn_config(listener))
        task = asyncio.get_running_loop().create_task(server.serve())
        listener.server, listener.task = server, task
        while not server.started:
            if task.done():
                exc = task.exception() if not task.cancelled() else None
                if not listener.required:
                    logger.warning(
                        "%s not served: cannot listen on %s:%s (%s)",
                        listener.name,
                        listener.host,
                        listener.port,
                        exc,
                    )
                    return
                await self.stop()
                raise RuntimeError(
                    f"engine failed to start on {listener.host}:{listener.port}"
                ) from exc
            await asyncio.sleep(0.005)
        listener.bound_port = server.servers[0].sockets[0].getsockname()[1]
        self.listeners[listener.name] = listener

    async def stop(self) -> None:
        """Close every worker socket, run teardowns, stop uvicorn. Idempotent."""
        if not self._started or self.core is None or self.workers is None:
            return
        self._started = False
        names = {wl.name for wl in self.workers.worker_manager.worker_listeners}
        serving = [x for x in self.listeners.values() if x.name not in names]
        worker_sockets = [x for x in self.listeners.values() if x.name in names]
        self.listeners = {}
        for listener in serving:
            listener.server.should_exit = True  # stop accepting; requests in flight end below
        await self.core.shutdown()  # in-flight calls fail (invocation_stopped), channels close
        await self.workers.backends.close()
        for listener in serving:
            await _finish(listener)
        for listener in worker_sockets:
            listener.server.should_exit = True
        for listener in worker_sockets:
            await _finish(listener)

    async def serve_forever(self) -> None:
        """Start, then wait until uvicorn stops (e.g. after ``stop()`` or a signal)."""
        await self.start()
        task = self.listeners["worker"].task
        assert task is not None
        await asyncio.shield(task)


async def _finish(listener: Listener) -> None:
    if listener.task is not None:
        with contextlib.suppress(Exception):
            await listener.task


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
    def workers(self) -> EngineWorkers:
        assert self.engine.workers is not None
        return self.engine.workers

    @property
    def url(self) -> str:
        return self.engine.url

    @property
    def port(self) -> int | None:
        return self.engine.port

    @property
    def worker_urls(self) -> list[str]:
        return self.engine.worker_urls

    @property
    def http_url(self) -> str:
        return self.engine.http_url

    @property
    def stream_url(self) -> str:
        return self.engine.stream_url

    @property
    def console_url(self) -> str:
        return self.engine.console_url

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
            thread.join(10)  # the loop thread closes its loop once it stops (_run_loop)
            if thread.is_alive():
                logger.warning("the engine's loop thread did not end within 10 s")

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
    """Run ``loop`` until stopped, then close it on this thread (a close that blocks, e.g. on
    a transport, holds only this daemon thread, never the caller of ``stop()``)."""
    asyncio.set_event_loop(loop)
    loop.call_soon(ready.set)
    try:
        loop.run_forever()
    finally:
        try:
            loop.close()
        except Exception:
            logger.exception("closing the engine's loop failed")
