"""``IIIBridge``: an ASGI app joins iii with one line.

::

    app = FastAPI(lifespan=my_lifespan)
    bridge = IIIBridge(app)               # url: $III_URL or ws://127.0.0.1:49134

At startup (after the app's own startup) the bridge connects a worker on the server's event loop,
registers every route as an iii function behind ``http`` triggers (see
:mod:`iii_asgi.bridge.routes`) plus the functions and triggers declared on it, and logs the
table. Requests the engine sends are served by the whole app (its middleware, dependencies,
validation, exception handlers) through the ASGI driver (:mod:`iii_asgi.bridge.driver`). At
shutdown it unregisters the triggers, drains in-flight invocations for ``drain_timeout`` seconds,
closes, and then lets the app's own shutdown run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from iii import III, InitOptions
from iii.client import Trigger
from iii.context import early_answer

from ..worker_app import process_client
from .driver import ErrorHook, drive
from .lifespan import join_lifespan
from .registration import RouteRegistrations, RouteWatch, SyncResult
from .routes import BridgeRoute, RouteFilter, collect_routes, format_table
from .telemetry import quiet_framework_telemetry

__all__ = ["IIIBridge", "IIIMiddleware"]

logger = logging.getLogger("iii_asgi.bridge")
F = TypeVar("F", bound=Callable[..., Any])

#: Seconds to wait for the engine's answer to the registration check at startup.
REGISTRATION_CHECK_S = 10.0


@dataclass
class _Function:
    function_id: str
    handler: Callable[..., Any]
    description: str | None
    metadata: dict[str, Any] | None


@dataclass
class _TriggerSpec:
    trigger_type: str
    function_id: str
    config: Any
    metadata: Any


class IIIBridge:
    """Bridge an ASGI app (FastAPI, Starlette, any) to the iii engine.

    >>> bridge = IIIBridge(app, include_tags=["todos"], drain_timeout=5)
    >>> @bridge.function("orders::recalc")
    ... async def recalc(data): ...

    Arguments:
        app: the ASGI app. A Starlette/FastAPI app gets :class:`IIIMiddleware` added (so
            ``uvicorn module:app`` is bridged); any other app: serve the bridge itself
            (``uvicorn module:bridge``).
        url: the engine's worker URL; else ``$III_URL``, else ``ws://127.0.0.1:49134``.
        worker_name: this worker's name, as ``<worker_name>:<pid>`` so the processes of
            ``uvicorn --workers N`` never share it (default ``<hostname>:<pid>``); overrides
            ``options`` (``III_WORKER_NAME`` gets the same suffix).
        include_paths / exclude_paths: ``fnmatch`` patterns on route templates (a pattern without
            wildcards also matches the paths under it).
        include_tags / exclude_tags: route tags (FastAPI).
        include_routers / exclude_routers: ``APIRouter`` / ``Router`` objects whose routes to
            keep or drop.
        include_hidden: bridge the docs (``/docs``, ``/openapi.json``, ...) and every
            ``include_in_schema=False`` route (default); ``False`` leaves them out.
        drain_timeout: seconds to let in-flight engine invocations finish at shutdown.
        wait_for_engine: at startup, wait (retrying) until the engine is reachable instead of
            failing the startup.
        options: :class:`iii.InitOptions` of the client.
        root_path: served under this prefix (default: the app's or the lifespan scope's
            ``root_path``); the engine routes ``root_path + path``.
        path_depth: how many segments a ``{p:path}`` parameter may span through the engine.
        connect_timeout: seconds to wait for the connection when ``wait_for_engine`` is false.
        enabled: ``False`` leaves the app unbridged (no connection at startup), e.g. for the
            app's own unit tests with ``TestClient``; default from env ``III_BRIDGE``
            (``off``/``false``/``0``/``no`` disable it).
        framework_telemetry: keep FastAPI's native per-request telemetry on (default from env
            ``III_FRAMEWORK_TELEMETRY``; off otherwise, see :mod:`iii_asgi.bridge.telemetry`).
    """

    def __init__(
        self,
        app: ASGIApp,
        url: str | None = None,
        worker_name: str | None = None,
        include_paths: Sequence[str] | None = None,
        exclude_paths: Sequence[str] | None = None,
        include_tags: Sequence[str] | None = None,
        exclude_tags: Sequence[str] | None = None,
        drain_timeout: float = 10.0,
        wait_for_engine: bool = False,
        options: InitOptions | None = None,
        *,
        include_routers: Sequence[Any] | None = None,
        exclude_routers: Sequence[Any] | None = None,
        root_path: str | None = None,
        path_depth: int = 8,
        connect_timeout: float = 10.0,
        enabled: bool | None = None,
        framework_telemetry: bool | None = None,
        include_hidden: bool = True,
    ) -> None:
        self.app = app
        self.url = url
        self.options = options or InitOptions()
        if worker_name is not None:
            self.options = dataclasses.replace(self.options, worker_name=worker_name)
        self.route_filter = RouteFilter(
            include_paths=include_paths,
            exclude_paths=exclude_paths,
            include_tags=include_tags,
            exclude_tags=exclude_tags,
            include_routers=include_routers,
            exclude_routers=exclude_routers,
            include_hidden=include_hidden,
        )
        self.drain_timeout = drain_timeout
        self.wait_for_engine = wait_for_engine
        self.root_path = root_path
        self.path_depth = path_depth
        self.connect_timeout = connect_timeout
        #: ``False``: the app runs unbridged (no connection; e.g. in the app's own unit tests).
        self.enabled = _enabled_from_env() if enabled is None else enabled
        if self.enabled:
            quiet_framework_telemetry(app, framework_telemetry)
        #: The route → function → trigger table, filled at startup.
        self.routes: list[BridgeRoute] = []
        #: Why the last lifespan startup of the bridge failed (``None``: it did not).
        self.startup_error: str | None = None
        self._client: III | None = None
        self._ready = False
        self._functions: dict[str, _Function] = {}
        self._trigger_specs: list[_TriggerSpec] = []
        self._triggers: list[Trigger] = []  # of @bridge.trigger / register_trigger
        self._registrations: RouteRegistrations | None = None
        self._watch: RouteWatch | None = None
        self._syncing: asyncio.Task[Any] | None = None
        self._resync = False
        self._errors_checked = 0  # of client.registration_errors
        self._target: ASGIApp = app  # what the driver calls: the outermost app
        self._routes_source: Any = app
        self._state: dict[str, Any] | None = None
        self._served_root = ""
        #: The scope's ``root_path`` when it is not the engine paths' prefix (the test client).
        self._scope_root: str | None = None
        self._inflight = 0
        self._idle: asyncio.Event | None = None
        #: The app's running calls for engine requests (past their answer: background work).
        self._app_tasks: set[asyncio.Task[None]] = set()
        #: Called with every exception the app raises for an engine request (the test client).
        self._on_error: ErrorHook | None = None
        self._installed = False
        self._scope_extra = {"iii_bridge": self}
        add_middleware = getattr(app, "add_middleware", None)
        if callable(add_middleware):
            add_middleware(IIIMiddleware, bridge=self)
            self._installed = True
        self._middleware = IIIMiddleware(app, bridge=self)

    # -- public state ---------------------------------------------------------------------------

    @property
    def client(self) -> III:
        """The :class:`iii.III` client on the server's event loop.

        Raises ``RuntimeError`` before the lifespan startup connected it.
        """
        if self._client is None:
            raise RuntimeError(
                "the iii bridge is not started: it connects in the app's lifespan startup "
                "(is the server running lifespan? uvicorn --lifespan on)"
            )
        return self._client

    @property
    def ready(self) -> bool:
        """Connected and every function and trigger registered."""
        return (
            self._ready
            and self._client is not None
            and (self._client.get_connection_state() == "connected")
        )

    @property
    def inflight(self) -> int:
        """Engine invocations being served now."""
        return self._inflight

    # -- declarations ---------------------------------------------------------------------------

    def function(
        self,
        function_id: str,
        *,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Callable[[F], F]:
        """Declare a plain iii function next to the routes (registered at startup, or at once
        when already started). The handler takes ``data`` (sync or async), as with
        ``III.register_function``.

        Raises ``ValueError`` when ``function_id`` is already declared on this bridge.
        """

        def decorate(handler: F) -> F:
            if function_id in self._functions:
                raise ValueError(f"function {function_id!r} is already declared on this bridge")
            spec = _Function(function_id, handler, description, metadata)
            self._functions[function_id] = spec
            handler.__iii_function_id__ = function_id  # type: ignore[attr-defined]
            if self._client is not None:
                self._register_function(self._client, spec)
            return handler

        return decorate

    def trigger(
        self, trigger_type: str, config: Any = None, *, metadata: Any = None
    ) -> Callable[[F], F]:
        """Bind a function declared with :meth:`function` to a trigger (``queue``, ``cron``,
        ``subscribe``, ``state``, ... as the engine provides them)::

            @bridge.trigger("cron", {"expression": "0 */5 * * * * *"})
            @bridge.function("jobs::sweep")
            async def sweep(data): ...

        Raises ``TypeError`` when the decorated handler was not declared with :meth:`function`.
        """

        def decorate(handler: F) -> F:
            function_id = getattr(handler, "__iii_function_id__", None)
            if not isinstance(function_id, str):
                raise TypeError(
                    "bridge.trigger() decorates a function declared with @bridge.function(...) "
                    "(put @bridge.trigger above it), or use bridge.register_trigger()"
                )
            self.register_trigger(trigger_type, function_id, config, metadata=metadata)
            return handler

        return decorate

    def register_trigger(
        self, trigger_type: str, function_id: str, config: Any = None, *, metadata: Any = None
    ) -> None:
        """Bind ``function_id`` (any function, here or on another worker) to a trigger; made at
        startup, or at once when already started."""
        spec = _TriggerSpec(trigger_type, function_id, config, metadata)
        self._trigger_specs.append(spec)
        if self._client is not None:
            self._register_trigger(self._client, spec)

    # -- ASGI -----------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the app; for an app the bridge could not install itself into, this is the
        bridged ASGI app (``uvicorn module:bridge``)."""
        if self._installed:
            await self.app(scope, receive, send)
        else:
            await self._middleware(scope, receive, send)

    async def lifespan(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        """Run ``app``'s lifespan joined with the bridge's startup and shutdown (or untouched
        when the bridge is disabled)."""
        if not self.enabled:
            logger.info("iii bridge disabled (enabled=False or III_BRIDGE=off): not connecting")
            await app(scope, receive, send)
            return
        self._prepare(scope)
        await join_lifespan(
            app, scope, receive, send, on_startup=self._start_recorded, on_shutdown=self.stop
        )

    async def _start_recorded(self) -> None:
        self.startup_error = None
        try:
            await self.start()
        except Exception as exc:
            self.startup_error = f"{type(exc).__name__}: {exc}"
            raise

    def _prepare(self, scope: Scope) -> None:
        """Take what the lifespan scope tells: the outermost app, the lifespan state, the
        root path."""
        self._target = scope.get("app") or self._target
        self._routes_source = _routes_holder(scope.get("app")) or _routes_holder(self.app)
        state = scope.get("state")
        self._state = state if isinstance(state, dict) else None
        root_path = self.root_path
        if root_path is None:
            root_path = scope.get("root_path") or getattr(self.app, "root_path", "") or ""
        self._served_root = root_path.rstrip("/")

    # -- startup / shutdown ---------------------------------------------------------------------

    async def start(self) -> None:
        """Connect and register (the lifespan startup calls this).

        Raises :class:`RouteCollisionError`, ``ConnectionError`` (engine unreachable and not
        ``wait_for_engine``), :class:`iii.RegistrationRejectedError`, or ``RuntimeError`` when
        the engine refused a function or trigger.
        """
        self._watch = RouteWatch(self._routes_source)
        self.routes = self._collect()
        self._idle = asyncio.Event()
        self._idle.set()
        client = process_client(self.url, self.options)  # name: <worker_name>:<pid>
        handler = self._route_handler(client.get_address(), self.options.resolved_headers())
        self._registrations = RouteRegistrations(client, handler)
        self._errors_checked = 0
        self._registrations.apply(self.routes)
        self._triggers = []
        for spec in self._functions.values():
            self._register_function(client, spec)
        for trigger in self._trigger_specs:
            self._register_trigger(client, trigger)
        await self._connect(client)
        self._client = client
        try:
            await self._check_registrations(client)
        except BaseException:
            self._client = None
            await client.shutdown_async()
            raise
        self._ready = True
        logger.info(
            "iii bridge: worker %s connected to %s; routes:\n%s",
            client.worker_name,
            client.get_address(),
            format_table(self.routes),
        )

    async def _connect(self, client: III) -> None:
        if self.wait_for_engine:
            logger.info("iii bridge: waiting for the engine at %s", client.get_address())
            await client.connect(timeout=None)
            return
        loop = asyncio.get_running_loop()
        refused: asyncio.Future[str] = loop.create_future()

        def watch(state: str) -> None:
            if state in ("reconnecting", "failed") and not refused.done():
                refused.set_result(state)

        unsubscribe = client.on_connection_state_change(watch)
        connecting = asyncio.ensure_future(client.connect(timeout=self.connect_timeout))
        waiters: set[asyncio.Future[Any]] = {connecting, refused}
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            unsubscribe()
        if connecting.done():
            try:
                connecting.result()
                return
            except BaseException:
                await client.shutdown_async()
                raise
        connecting.cancel()
        await asyncio.gather(connecting, return_exceptions=True)
        await client.shutdown_async()
        raise ConnectionError(
            f"cannot connect to the iii engine at {client.get_address()} (set III_URL or "
            "url=..., start the engine, or pass wait_for_engine=True to wait for it)"
        )

    async def _check_registrations(self, client: III) -> None:
        """A round trip after the registrations: the engine handles a connection's frames in
        order, so any refusal has arrived when the answer does."""
        await client.trigger_async(
            {
                "function_id": "engine::functions::list",
                "payload": {},
                "timeout_ms": int(REGISTRATION_CHECK_S * 1000),
            }
        )
        ours = {row.function_id for row in self.routes} | set(self._functions)
        new = client.registration_errors[self._errors_checked :]
        self._errors_checked = len(client.registration_errors)  # each is reported once
        errors = [e for e in new if e.get("function_id") in ours]
        optional = self._registrations.optional_ids() if self._registrations else set()
        for error in [e for e in errors if e.get("id") in optional]:
            errors.remove(error)
            logger.warning(
                "iii bridge: the engine refused an extra path of %s (a redirect twin or a "
                "catch-all depth), kept by another route: %s",
                error["function_id"],
                error.get("message"),
            )
        if errors:
            lines = "; ".join(
                f"{e['kind']} {e['function_id']}: {e.get('code')}: {e.get('message')}"
                for e in errors
            )
            raise RuntimeError(f"the iii engine refused registrations: {lines}")

    async def sync(self) -> SyncResult:
        """Bring the engine in step with the app's routes now: register the routes added since
        startup (or the last sync), withdraw the removed ones. The bridge also checks, on the
        first request after routes were added to the app (its route count, or FastAPI's routes
        version, changed), and syncs then in the background; routes added inside an already
        mounted sub-app need this call.

        Raises ``RuntimeError`` before startup, or when the engine refused a registration.
        """
        client = self.client
        assert self._registrations is not None
        self._watch = RouteWatch(self._routes_source)
        table = self._collect()
        result = self._registrations.apply(table)
        self.routes = table
        if result:
            await self._check_registrations(client)
            logger.info(
                "iii bridge: routes synced (added %s, removed %s, rebound %s); routes:\n%s",
                list(result.added),
                list(result.removed),
                list(result.rebound),
                format_table(self.routes),
            )
        return result

    def _check_routes(self) -> None:
        """Per request, cheaply: when the app's routes changed since the last sync, sync in
        the background."""
        watch = self._watch
        if not self._ready or watch is None or not watch.changed():
            return
        self._resync = True
        if self._syncing is None or self._syncing.done():
            self._syncing = asyncio.get_running_loop().create_task(self._sync_quietly())

    async def _sync_quietly(self) -> None:
        while self._resync and self._ready:  # a change seen during a sync: once more
            self._resync = False
            try:
                await self.sync()
            except Exception:
                logger.exception("iii bridge: syncing the routes failed")

    def _collect(self) -> list[BridgeRoute]:
        return collect_routes(
            self._routes_source,
            route_filter=self.route_filter,
            root_path=self._served_root,
            path_depth=self.path_depth,
            answers_options=_has_cors(self._routes_source),
        )

    async def stop(self) -> None:
        """Unregister the triggers, drain in-flight invocations and the app's work past them
        (background tasks), close (the lifespan shutdown calls this before the app's own
        shutdown)."""
        client = self._client
        self._ready = False
        if client is None:
            return
        if self._registrations is not None:
            self._registrations.unregister_triggers()
        for trigger in self._triggers:
            trigger.unregister()
        self._triggers = []
        if self._syncing is not None:
            self._syncing.cancel()
        await self._drain()
        await client.shutdown_async()
        self._client = None

    async def _drain(self) -> None:
        """Wait up to ``drain_timeout`` for in-flight invocations and the app's calls (their
        background tasks too); cancel what is left."""
        if not (self._inflight or self._app_tasks):
            return
        logger.info(
            "iii bridge: draining %d in-flight invocation(s), %d app call(s)",
            self._inflight,
            len(self._app_tasks),
        )
        try:
            await asyncio.wait_for(self.settle(), self.drain_timeout)
        except asyncio.TimeoutError:
            logger.warning(
                "iii bridge: %d app call(s) still running after %.1fs; cancelling them",
                len(self._app_tasks),
                self.drain_timeout,
            )
            for task in list(self._app_tasks):
                task.cancel()
            await asyncio.gather(*self._app_tasks, return_exceptions=True)

    async def settle(self) -> None:
        """Wait until no engine invocation is in flight and every app call it started has
        ended (background tasks included)."""
        while self._inflight or self._app_tasks:
            if self._app_tasks:
                await asyncio.wait(list(self._app_tasks))
            elif self._idle is not None:
                await self._idle.wait()
            else:
                await asyncio.sleep(0)

    # -- serving --------------------------------------------------------------------------------

    def _route_handler(self, engine_url: str, channel_headers: dict[str, str]) -> Any:
        """The handler of every route function: drive the app with the engine's request.

        Marked ``iii_raw_channel_refs``: the SDK leaves the payload's channel refs as dicts and
        the driver opens them only when the request has a body or the response streams. Marked
        ``iii_answers_early``: the app runs in the handler's task and the response is answered
        from its final ``send`` (:func:`iii.context.early_answer`)."""
        trusted = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
        target = self._target
        proxy: Any = ProxyHeadersMiddleware  # as uvicorn does: X-Forwarded-* of a trusted peer
        proxied: ASGIApp = proxy(target, trusted)
        state = self._state
        root_path = self._served_root if self._scope_root is None else self._scope_root
        extra = self._scope_extra
        client = (urlsplit(engine_url).hostname or "127.0.0.1", 0)
        tasks = self._app_tasks
        on_error = self._app_error

        async def serve(data: Any) -> Any:
            self._inflight += 1
            idle = self._idle
            if idle is not None:
                idle.clear()
            headers = data.get("headers") if isinstance(data, dict) else None
            forwarded = headers is not None and (
                "x-forwarded-for" in headers or "x-forwarded-proto" in headers
            )
            try:
                return await drive(
                    proxied if forwarded else target,
                    data,
                    state=state,
                    root_path=root_path,
                    extra_scope=extra,
                    engine_url=engine_url,
                    channel_headers=channel_headers,
                    client=client,
                    tasks=tasks,
                    on_error=on_error,
                    answer=early_answer(),
                )
            finally:
                self._inflight -= 1
                if self._inflight == 0 and idle is not None:
                    idle.set()

        serve.iii_raw_channel_refs = True  # type: ignore[attr-defined]
        serve.iii_answers_early = True  # type: ignore[attr-defined]
        return serve

    def _app_error(self, exc: BaseException) -> None:
        if self._on_error is not None:
            self._on_error(exc)

    def _register_function(self, client: III, spec: _Function) -> None:
        client.register_function(
            spec.function_id, spec.handler, description=spec.description, metadata=spec.metadata
        )

    def _register_trigger(self, client: III, spec: _TriggerSpec) -> None:
        self._triggers.append(
            client.register_trigger(
                {
                    "type": spec.trigger_type,
                    "function_id": spec.function_id,
                    "config": spec.config,
                    "metadata": spec.metadata,
                }
            )
        )


def _enabled_from_env() -> bool:
    return os.environ.get("III_BRIDGE", "").strip().lower() not in ("off", "false", "0", "no")


def _has_cors(app: Any) -> bool:
    """Whether the app has Starlette's ``CORSMiddleware`` (which answers preflights itself)."""
    from starlette.middleware.cors import CORSMiddleware

    return any(
        getattr(m, "cls", None) is CORSMiddleware for m in getattr(app, "user_middleware", ())
    )


def _routes_holder(app: Any) -> Any:
    """The object with ``.routes`` under ``app`` (following ``.app`` through middleware)."""
    for _ in range(32):
        if app is None:
            return None
        if isinstance(getattr(app, "routes", None), list):
            return app
        app = getattr(app, "app", None)
    return None


class IIIMiddleware:
    """``IIIMiddleware(app, bridge=None, **options)``: ``options`` are :class:`IIIBridge`'s
    arguments (``url``, ``worker_name``, filters, ``drain_timeout``, ...), used when no
    ``bridge`` is given. The bridge is ``middleware.bridge``."""

    def __init__(self, app: ASGIApp, bridge: IIIBridge | None = None, **options: Any) -> None:
        self.app = app
        if bridge is None:
            bridge = IIIBridge(_Unwrapped(app), **options)
        self.bridge = bridge

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            if "app" not in scope:
                scope["app"] = self  # what the driver calls: this middleware and below
            await self.bridge.lifespan(self.app, scope, receive, send)
            return
        scope["iii_bridge"] = self.bridge
        if scope["type"] == "http":
            self.bridge._check_routes()
        await self.app(scope, receive, send)


class _Unwrapped:
    """Hides ``add_middleware`` so a bridge made by the middleware does not install itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.root_path = getattr(app, "root_path", "")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
