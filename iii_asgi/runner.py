"""``iii-asgi run``: an ASGI app under uvicorn, bridged to iii, with the embedded engine when no
engine is named.

Three shapes, chosen from the options:

- **one process** (the default): the embedded engine (worker port 49134, HTTP trigger port
  3111) and the app run on **one event loop** in this process; SIGINT/SIGTERM stop the app first
  (its lifespan shutdown unregisters, drains and disconnects), then the engine.
- **``--reload`` or ``--workers N``**: uvicorn's supervisor runs the app in child processes. The
  engine stays in the supervisor process (a background thread), so it is *not* restarted by a
  reload: each reloaded child connects again (``III_URL`` is exported to it) and registers its
  routes afresh; the old child's teardown removes its registrations first. State kept by the
  engine's built-ins (state, streams, queues) survives reloads; the app's own memory does not.
  With ``--workers N`` the children share route function ids: one owns each, the others stand
  by (``iii._standby``) and take over if it dies.
- **``--engine URL`` or ``III_URL``**: no embedded engine; the app connects to that one.

The app named ``module:attr`` is bridged unless it already is (:func:`ensure_bridged`).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import signal
import sys
import traceback
from collections.abc import Coroutine, Generator
from dataclasses import dataclass, field
from typing import Any

import click
import uvicorn
from uvicorn.importer import import_from_string

from .engine import Engine, EngineConfig, EngineThread
from .engine.gc_tuning import settle_after_startup

__all__ = ["APP_ENV", "RunOptions", "ensure_bridged", "load_app", "run"]

#: Environment variable naming the ``module:attr`` the uvicorn children load (reload/workers).
APP_ENV = "III_ASGI_APP"
_FACTORY_ENV = "III_ASGI_APP_FACTORY"
_LOG_ENV = "III_ASGI_LOG_LEVEL"


def _log_iii(level: str) -> None:
    """Show the SDK's and the bridge's log lines (route table, standby, reconnects) at the
    uvicorn ``--log-level``, in uvicorn's format, unless the app configured them itself."""
    for name in ("iii", "iii_asgi"):
        logger = logging.getLogger(name)
        if logger.handlers:
            continue
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)-9s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(level.upper())
        logger.propagate = False


@dataclass
class RunOptions:
    """Everything ``iii-asgi run`` takes (see the command's ``--help``)."""

    app: str
    engine_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    reload: bool = False
    reload_dirs: list[str] = field(default_factory=list)
    workers: int = 1
    factory: bool = False
    app_dir: str = "."
    log_level: str = "info"
    engine: EngineConfig = field(default_factory=EngineConfig)


def ensure_bridged(app: Any) -> Any:
    """``app`` joined to iii. Returned as it is: a :class:`~iii_asgi.WorkerApp`, an
    ``IIIBridge`` / ``IIIMiddleware``, or a Starlette/FastAPI app with ``IIIMiddleware`` in its
    middleware (``IIIBridge(app)`` or ``add_middleware(IIIMiddleware)`` was called). A
    Starlette/FastAPI app without it gets ``IIIBridge(app)``; any other ASGI callable is
    served through ``IIIBridge(app)`` itself. Raises ``TypeError`` for a non-callable."""
    from .bridge import IIIBridge, IIIMiddleware
    from .worker_app import WorkerApp

    if isinstance(app, WorkerApp | IIIBridge | IIIMiddleware):
        return app
    middleware = getattr(app, "user_middleware", None)
    if middleware is not None:
        if not any(getattr(m, "cls", None) is IIIMiddleware for m in middleware):
            IIIBridge(app)  # adds IIIMiddleware to the app
        return app
    if not callable(app):
        raise TypeError(f"{app!r} is not an ASGI application")
    return IIIBridge(app)


def load_app() -> Any:
    """The uvicorn factory used by ``iii-asgi run``: import ``$III_ASGI_APP`` (``module:attr``,
    called first when ``$III_ASGI_APP_FACTORY`` is ``1``) and bridge it."""
    target = os.environ.get(APP_ENV)
    if not target:
        raise RuntimeError(f"{APP_ENV} is not set: load_app() is for `iii-asgi run`")
    _log_iii(os.environ.get(_LOG_ENV, "info"))
    app = import_from_string(target)
    if os.environ.get(_FACTORY_ENV) == "1":
        app = app()
    return ensure_bridged(app)


def run(options: RunOptions) -> None:
    """Serve until SIGINT/SIGTERM (see the module docstring). Raises ``click.ClickException``
    when the app cannot be imported or the engine cannot bind its ports."""
    app_dir = os.path.abspath(options.app_dir)
    if app_dir not in sys.path:
        sys.path.insert(0, app_dir)
    _check_target(options.app)
    os.environ[APP_ENV] = options.app
    os.environ[_FACTORY_ENV] = "1" if options.factory else "0"
    os.environ[_LOG_ENV] = options.log_level
    engine_url = options.engine_url or os.environ.get("III_URL") or None
    if engine_url is not None:
        os.environ["III_URL"] = engine_url
        click.echo(f"iii-asgi: using the engine at {engine_url}")
        if options.reload or options.workers > 1:
            _supervised(options)
        else:
            run_coroutine(_single(options, None))
        return
    if options.reload or options.workers > 1:
        thread = EngineThread(options.engine)
        try:
            thread.start()
        except RuntimeError as exc:
            raise click.ClickException(_bind_hint(str(exc))) from None
        try:
            os.environ["III_URL"] = thread.url
            _announce(thread.engine)
            _quiet_engine_sockets()
            _supervised(options)
        finally:
            thread.stop()
            click.echo("iii-asgi: engine stopped")
        return
    run_coroutine(_single(options, Engine(options.engine)))


def _check_target(target: str) -> None:
    """Fail fast, before any engine starts, on a malformed ``module:attr`` or a missing module
    (the module itself is imported later, where uvicorn loads the app)."""
    module, _, attr = target.partition(":")
    if not module or not attr:
        raise click.BadParameter(f"{target!r}: expected module:attr", param_hint="APP")
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise click.ClickException(
            f"cannot import module {module!r} (searched sys.path, with the --app-dir first)"
        )


def _bind_hint(message: str) -> str:
    return (
        f"{message}. Is another engine running? Pass --engine-port/--engine-http-port "
        "(0 picks free ports) or --engine URL to use a running engine."
    )


class _QuietEngineSockets(logging.Filter):
    """Drops uvicorn's per-socket lines about the embedded engine's own WebSockets (worker
    connections, channels, ``/otel``): one per streamed request otherwise. They share uvicorn's
    logger with the app's server, so the app's lines are told apart by path."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg in ("connection open", "connection closed"):
            return False
        if isinstance(record.msg, str) and '"WebSocket %s"' in record.msg and record.args:
            path = str(record.args[1]) if isinstance(record.args, tuple) else ""
            return not (path in ("/", "/otel") or path.startswith("/ws/channels/"))
        return True


def _quiet_engine_sockets() -> None:
    logging.getLogger("uvicorn.error").addFilter(_QuietEngineSockets())


def _announce(engine: Engine) -> None:
    click.echo(f"iii-asgi: engine {engine.url} (workers)")
    if engine.http_port is not None:
        click.echo(f"iii-asgi: engine {engine.http_url} (HTTP triggers: call the app here)")
    console = engine.workers.console if engine.workers is not None else None
    if console is not None and console.port is not None:
        click.echo(f"iii-asgi: console {console.login_url}")


def _uvicorn_config(options: RunOptions, app: Any) -> uvicorn.Config:
    return uvicorn.Config(app, host=options.host, port=options.port, log_level=options.log_level)


def _supervised(options: RunOptions) -> None:
    uvicorn.run(
        "iii_asgi.runner:load_app",
        factory=True,
        host=options.host,
        port=options.port,
        reload=options.reload,
        reload_dirs=options.reload_dirs or None,
        workers=options.workers if options.workers > 1 else None,
        log_level=options.log_level,
        app_dir=options.app_dir,
    )


class _AppServer(uvicorn.Server):
    """uvicorn for the app in one-process mode: a first SIGINT/SIGTERM asks for a graceful
    exit, a second SIGINT forces it; the signal is not re-raised afterwards (uvicorn does), so
    the engine still stops cleanly."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            yield
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    def _on_signal(self, sig: int) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.should_exit = True


async def _single(options: RunOptions, engine: Engine | None) -> None:
    if engine is not None:
        try:
            await engine.start()
        except RuntimeError as exc:
            raise click.ClickException(_bind_hint(str(exc))) from None
        os.environ["III_URL"] = engine.url
        _announce(engine)
        _quiet_engine_sockets()
    try:
        try:
            app = load_app()
        except Exception:
            click.echo(traceback.format_exc().rstrip(), err=True)
            raise click.ClickException("the app did not start (see the traceback above)") from None
        server = _AppServer(_uvicorn_config(options, app))
        task = asyncio.ensure_future(_serve(server))
        while not server.started and not task.done():
            await asyncio.sleep(0.01)
        sockets = server.servers[0].sockets if server.started and server.servers else []
        if sockets:  # none when a signal stopped the app while it started
            port = sockets[0].getsockname()[1]
            click.echo(f"iii-asgi: app http://{options.host}:{port} (direct)")
            settle_after_startup()
        await task
    finally:
        if engine is not None:
            # Telemetry outlives the app's client: flush and close its /otel socket while the
            # engine (on this loop) still reads it, instead of failing against a stopped engine.
            from iii.observability import shutdown_otel

            await asyncio.to_thread(shutdown_otel)
            await engine.stop()
            click.echo("iii-asgi: engine stopped")
    if not server.started:
        raise click.ClickException("the app did not start (see the log above)")


async def _serve(server: uvicorn.Server) -> None:
    with contextlib.suppress(SystemExit):  # uvicorn's way of reporting a failed startup
        await server.serve()


def run_coroutine(coro: Coroutine[Any, Any, None]) -> None:
    """Run ``coro`` to completion on a new event loop: uvloop's when installed, else asyncio's
    (the CLI's ``engine`` and ``run`` commands)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        asyncio.run(coro)
        return
    uvloop.run(coro)
