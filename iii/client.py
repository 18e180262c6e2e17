"""The iii client: one worker connection to the engine (protocol.md §1–§3, §5.2, §6).

Two loop models (DESIGN.md "One event loop"):

- ``register_worker()`` from plain sync code: the client owns a background event-loop thread,
  connects, and returns once connected (seeds 001/002).
- ``III(url)`` then ``await client.connect()`` inside a running loop: the client attaches to that
  loop, so handlers run on the caller's loop (seed 004; the ASGI bridge uses this).
- ``III(url, options)`` used from sync code (the official 0.25 pattern): the first sync
  registration or ``trigger()`` made where no event loop runs starts the client's own loop
  thread and connects in the background, as ``register_worker()`` does (without waiting).

Sync methods (``trigger``, ``register_*``) work from any thread; ``trigger`` refuses to run on
the client's own loop thread, where it would deadlock.

:class:`III` is a facade over the parts in private modules: the loop (``_loop``), the
connection (``_connection``), registrations and standbys (``_registrations``, ``_standby``),
invocations both ways (``_invocation``, ``_pending``); it routes received frames to them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from . import protocol as wire
from ._config import SDK_VERSION as SDK_VERSION
from ._config import ClientConfig
from ._connection import FRAGMENT_SIZE as FRAGMENT_SIZE
from ._connection import SINGLE_FRAME_LIMIT as SINGLE_FRAME_LIMIT
from ._connection import Connection, ConnectionStateCallback
from ._handlers import LocalFunction as LocalFunction
from ._invocation import Invoker, to_request
from ._loop import ClientLoop
from ._pending import PendingCalls
from ._registrations import FunctionRef, Registrations, Trigger, TriggerTypeRef
from ._standby import Standby as Standby
from ._transport import CoalescingClientConnection as CoalescingClientConnection
from .channels import Channel, ChannelReader, ChannelWriter, StreamChannelRef
from .channels import resolve_channel_refs as resolve_channel_refs
from .context import InvocationContext as InvocationContext
from .context import enter_invocation as enter_invocation
from .context import exit_invocation as exit_invocation
from .errors import IIIInvocationError as IIIInvocationError
from .errors import RegistrationRejectedError
from .errors import error_from_body as error_from_body
from .errors import timeout_error as timeout_error
from .http import HttpInvocationConfig
from .observability import OtelConfig, init_otel
from .observability._invocation import end_execution as end_execution
from .observability._invocation import outgoing as outgoing
from .observability._invocation import start_execution as start_execution
from .options import MAX_QUEUE_SIZE as MAX_QUEUE_SIZE
from .options import IIIConnectionState, InitOptions
from .options import ReconnectionConfig as ReconnectionConfig
from .options import resolve_engine_url as resolve_engine_url
from .types import EnqueueResult as EnqueueResult
from .types import (
    FunctionInfo,
    RegisterTriggerInput,
    RegisterTriggerTypeInput,
    TriggerActionVoid,
    TriggerHandler,
    TriggerRequest,
    WorkerInfo,
)
from .types import TriggerActionEnqueue as TriggerActionEnqueue
from .types import TriggerConfig as TriggerConfig

__all__ = ["III", "FunctionRef", "Trigger", "TriggerTypeRef", "register_worker"]
# The ``import X as X`` above keep names importable from ``iii.client`` that were defined or
# imported here before the split (tests/sdk/test_import_paths.py).

logger = logging.getLogger("iii.client")

CONNECT_WAIT_S = 30.0


class III:
    """A worker's connection to the iii engine.

    >>> client = register_worker("ws://127.0.0.1:49134")
    >>> client.register_function("math::add", lambda d: d["a"] + d["b"])
    >>> client.trigger({"function_id": "math::add", "payload": {"a": 1, "b": 2}})
    3

    ``address`` resolves from the argument, else ``III_URL``, else ``ws://127.0.0.1:49134``.
    Raises ``ValueError`` for a blank ``options.namespace``.
    """

    def __init__(self, address: str | None = None, options: InitOptions | None = None) -> None:
        self._config = config = ClientConfig(address, options)
        self._client_loop = client_loop = ClientLoop()
        self._pending = pending = PendingCalls()
        self._conn = conn = Connection(
            config,
            client_loop,
            pending,
            dispatch=self._dispatch,
            replay=lambda: self._registrations.replay(),
        )
        self._registrations = Registrations(config, conn, client_loop)
        self._invoker = Invoker(config, client_loop, conn, pending, self._registrations.functions)
        conn.gate = self._invoker.slots  # stop reading while the handlers' backlog is full
        #: ErrorBodies of ``error`` frames the engine sent (e.g. a refused HTTP-invoked function).
        self.engine_errors: list[dict[str, Any]] = []
        #: Registrations the engine refused: ``{"kind": "trigger"|"function", "id",
        #: "function_id", "code", "message"}`` (``triggerregistrationresult`` errors, §2.11;
        #: ``FUNCTION_NAMESPACE_CONFLICT`` rejections, §1.10).
        self.registration_errors: list[dict[str, Any]] = self._registrations.errors
        self._autostart: concurrent.futures.Future[None] | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def worker_id(self) -> str | None:
        """The engine-assigned id of the current connection (``workerregistered``)."""
        return self._conn.worker_id

    @property
    def worker_name(self) -> str:
        return self._config.name

    @property
    def namespace(self) -> str | None:
        return self._config.namespace

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop the connection and the async handlers run on, once bound."""
        return self._client_loop.loop

    def get_address(self) -> str:
        """The resolved engine URL."""
        return self._config.address

    def get_connection_state(self) -> IIIConnectionState:
        return self._conn.state

    @property
    def standby_functions(self) -> dict[str, str]:
        """``{function id: owner worker id}`` of the functions registered here that another
        live worker owns (``FUNCTION_NAMESPACE_CONFLICT``, protocol.md §2.6). They stay
        registered locally and are claimed again when the owner leaves; see ``iii._standby``."""
        return self._registrations.standby.functions()

    @property
    def standby_retry_interval_s(self) -> float:
        """Fallback period (seconds) of standby claims; events normally trigger them sooner."""
        return self._registrations.standby.retry_interval_s

    @standby_retry_interval_s.setter
    def standby_retry_interval_s(self, seconds: float) -> None:
        self._registrations.standby.retry_interval_s = seconds

    async def connect(self, timeout: float | None = CONNECT_WAIT_S) -> None:
        """Connect on the running loop and wait until registered (seed 004).

        Raises ``ConnectionError`` when no connection could be set up within ``timeout`` seconds
        (the client then stops retrying), :class:`RegistrationRejectedError` when the engine
        refused the worker. Returns at once when already connected.
        """
        loop = asyncio.get_running_loop()
        bound = self._client_loop.loop
        if bound is not None and bound is not loop:
            await asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(self._start(timeout, keep_trying=False), bound)
            )
            return
        await self._start(timeout, keep_trying=False)

    connect_async = connect

    async def _start(self, timeout: float | None, *, keep_trying: bool) -> None:
        self._conn.bind(asyncio.get_running_loop())
        self._init_otel()
        await self._conn.start(timeout, keep_trying=keep_trying)

    def _init_otel(self) -> None:
        """OTel for this process (sdk_surface.md §3.9): ``InitOptions.otel``, exporting to this
        worker's engine unless the config names another; no-op when already initialised or
        disabled (``OTEL_ENABLED=false``)."""
        config = OtelConfig.coerce(self._config.options.otel)
        if config.engine_ws_url is None:
            config = replace(
                config,
                engine_ws_url=self._config.address,
                engine_ws_headers=config.engine_ws_headers or self._config.headers,
            )
        init_otel(config)

    def _start_background_loop(self) -> None:
        self._conn.bind(self._client_loop.start_thread())

    def _start_from_sync(self) -> None:
        """Used from sync code with no loop bound and none running in this thread: start the
        own loop thread and connect there in the background (retrying, as
        ``register_worker()``), so sync registrations and ``trigger()`` work (0.25's
        ``III(url, options)``). Inside a running loop nothing happens: ``await connect()``
        attaches the client to that loop."""
        if self._client_loop.loop is not None:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            return
        self._start_background_loop()
        loop = self._client_loop.loop
        assert loop is not None
        future = asyncio.run_coroutine_threadsafe(
            self._start(CONNECT_WAIT_S, keep_trying=True), loop
        )
        future.add_done_callback(_log_start_failure)
        self._autostart = future

    async def shutdown_async(self) -> None:
        """Disconnect and release everything: pending calls fail with code ``SHUTDOWN``,
        running handlers are cancelled, the handler thread pool is shut down."""
        loop = self._client_loop.loop
        if loop is not None and asyncio.get_running_loop() is not loop:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self.shutdown_async(), loop))
            return
        await self._conn.stop()
        self._pending.fail(lambda p: True, "SHUTDOWN", "client shut down")
        await self._client_loop.cancel_tasks()
        self._invoker.close()
        self._conn.set_state("disconnected")

    def shutdown(self) -> None:
        """Synchronous :meth:`shutdown_async`; also stops the owned loop thread.

        Raises ``RuntimeError`` when called on the client's own loop thread.
        """
        loop = self._client_loop.loop
        if loop is None:
            return
        self._client_loop.refuse_loop_thread("shutdown", "shutdown_async")
        if loop.is_running():
            asyncio.run_coroutine_threadsafe(self.shutdown_async(), loop).result(timeout=30)
        self._client_loop.stop_thread()

    def on_connection_state_change(self, callback: ConnectionStateCallback) -> Callable[[], None]:
        """Call ``callback(state)`` now and on every state transition; returns an unsubscribe.

        States: ``disconnected``, ``connecting``, ``connected``, ``reconnecting``, ``failed``.
        Callbacks run on the client's loop thread; one that raises is logged and isolated.
        """
        return self._conn.add_state_listener(callback)

    add_connection_state_listener = on_connection_state_change

    # ------------------------------------------------------------------ inbound

    def _dispatch(self, frame: wire.Frame) -> None:
        """Route a frame from the engine to the part of the client that handles it."""
        kind = frame["type"]
        if kind == "invocationresult":
            self._invoker.on_result(frame)
        elif kind == "invokefunction":
            self._invoker.serve(frame)
        elif kind == "workerregistered":
            self._conn.worker_id = frame["worker_id"]
            self._conn.reattach_token = frame.get("reattach_token")
        elif kind == "registertrigger":
            self._client_loop.spawn(self._registrations.on_provider_register(frame))
        elif kind == "unregistertrigger":
            self._client_loop.spawn(self._registrations.on_provider_unregister(frame))
        elif kind == "triggerregistrationresult":
            self._registrations.on_trigger_result(frame)
        elif kind == "registrationrejected":
            self._on_rejected(frame)
        elif kind == "error":
            self._on_engine_error(frame)
        elif kind == "ping":
            self._conn.post({"type": "pong"})
        elif kind == "pong":
            self._registrations.standby.pong()
        else:
            logger.debug("iii: ignoring %s frame", kind)

    def _on_engine_error(self, frame: wire.Frame) -> None:
        """An ``error`` frame: the engine refused something it cannot answer otherwise, e.g.
        an HTTP-invoked function whose URL or auth failed validation (protocol.md §4.1)."""
        error = frame.get("error")
        body = error if isinstance(error, dict) else {}
        subject = f"function {frame['function_id']!r}: " if frame.get("function_id") else ""
        logger.error("iii: engine error: %s%s: %s", subject, body.get("code"), body.get("message"))
        self.engine_errors.append(body)

    def _on_rejected(self, frame: wire.Frame) -> None:
        """``registrationrejected`` (protocol.md §1.10): a function conflict is the
        registrations' business; anything else refuses the worker and fails every call."""
        code = frame["code"]
        if code == "FUNCTION_NAMESPACE_CONFLICT":
            self._registrations.on_function_rejected(frame)
            return
        error = RegistrationRejectedError(
            code, frame.get("namespace"), frame.get("worker_name"), frame.get("owner_worker_id")
        )
        logger.error("iii: %s", error)
        self._conn.reject(error)
        self._pending.fail_all(error)

    # ------------------------------------------------------------------ registration

    def register_function(
        self,
        function_id: str,
        handler_or_invocation: Callable[..., Any] | HttpInvocationConfig,
        *,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        request_format: Any = None,
        response_format: Any = None,
    ) -> FunctionRef:
        """Serve ``function_id`` from this worker (``registerfunction``, protocol.md §2.4).

        ``handler_or_invocation``: a sync or async callable taking ``data`` (and optionally a
        parameter named ``metadata``), or an :class:`HttpInvocationConfig` (the engine calls a
        URL instead, §4). Formats are JSON Schema dicts; when omitted they are derived from the
        handler's type hints. Raises ``TypeError`` for a non-str id or handler, ``ValueError`` for
        an empty id or one already registered on this client.
        """
        self._start_from_sync()
        return self._registrations.register_function(
            function_id,
            handler_or_invocation,
            description=description,
            metadata=metadata,
            request_format=request_format,
            response_format=response_format,
        )

    def register_trigger(
        self,
        trigger: RegisterTriggerInput | Mapping[str, Any] | str,
        function_id: str | None = None,
        config: Any = None,
        *,
        metadata: Any = None,
        **kwargs: Any,
    ) -> Trigger:
        """Bind a function to a trigger (``registertrigger``, protocol.md §2.9).

        ``trigger`` is a dict / :class:`RegisterTriggerInput` with ``type``, ``function_id``,
        ``config``, ``metadata``, ``namespace``, ``trigger_namespace``; the older forms
        ``register_trigger("http", "fn", {...})`` and ``register_trigger(type=..., ...)`` work
        too. Returns a :class:`Trigger` whose ``unregister()`` removes the binding. The engine
        acknowledges only failures (logged). Raises ``ValueError`` without a ``function_id``.
        """
        self._start_from_sync()
        return self._registrations.register_trigger(
            trigger, function_id, config, metadata=metadata, **kwargs
        )

    def register_trigger_type(
        self,
        trigger_type: RegisterTriggerTypeInput | Mapping[str, Any] | str,
        handler: TriggerHandler[Any] | str,
        legacy_handler: TriggerHandler[Any] | None = None,
    ) -> TriggerTypeRef[Any, Any]:
        """Provide a trigger type (``registertriggertype``, protocol.md §2.7, §5.2).

        ``register_trigger_type({"id": ..., "description": ...}, handler)``; seed 004's
        ``register_trigger_type(id, description, handler)`` works too. The handler's
        ``register_trigger`` / ``unregister_trigger`` are called for each binding. Raises
        ``TypeError`` when ``handler`` is not a :class:`TriggerHandler`.
        """
        self._start_from_sync()
        return self._registrations.register_trigger_type(trigger_type, handler, legacy_handler)

    def unregister_trigger_type(
        self, trigger_type: RegisterTriggerTypeInput | Mapping[str, Any] | str
    ) -> None:
        """Stop providing a trigger type (``unregistertriggertype``, protocol.md §2.8)."""
        self._registrations.unregister_trigger_type(trigger_type)

    def register_service(
        self, id: str, description: str | None = None, parent_service_id: str | None = None
    ) -> None:
        """Group functions under a service (``registerservice``, protocol.md §2.14; seed 004)."""
        self._start_from_sync()
        self._registrations.register_service(id, description, parent_service_id)

    # ------------------------------------------------------------------ invocation

    def trigger(self, request: TriggerRequest | Mapping[str, Any]) -> Any:
        """Invoke a function and block the calling thread until it answers.

        Returns the function's result; ``None`` for a Void action; an :class:`EnqueueResult`
        for an Enqueue action. Raises :class:`IIIInvocationError` (``IIITimeoutError`` after
        the timeout), and ``RuntimeError`` when called on the client's loop thread.
        """
        self._start_from_sync()
        loop = self._invoker.require_loop()
        self._client_loop.refuse_loop_thread("trigger", "trigger_async")
        return self._invoker.invoke_sync(to_request(request), loop)

    async def trigger_async(self, request: TriggerRequest | Mapping[str, Any]) -> Any:
        """Invoke a function from any event loop; same results and errors as :meth:`trigger`."""
        invoker = self._invoker
        invoker.require_loop()
        return await invoker.invoke(to_request(request))

    # ------------------------------------------------------------------ seed 004 helpers

    async def call(self, function_id: str, data: Any = None, timeout: float | None = None) -> Any:
        """``await call(id, data, timeout=seconds)``: :meth:`trigger_async` (seed 004)."""
        request: dict[str, Any] = {"function_id": function_id, "payload": data}
        if timeout is not None:
            request["timeout_ms"] = max(1, int(timeout * 1000))
        return await self.trigger_async(request)

    def call_void(self, function_id: str, data: Any = None) -> None:
        """Fire-and-forget from any thread (seed 004); errors are never reported."""
        request = TriggerRequest(function_id=function_id, payload=data, action=TriggerActionVoid())
        loop = self._invoker.require_loop()
        if self._client_loop.on_loop_thread():
            self._client_loop.spawn(self._invoker.invoke(request))
        else:
            asyncio.run_coroutine_threadsafe(self._invoker.invoke(request), loop)

    async def list_functions(self) -> list[FunctionInfo]:
        """Functions the engine knows (``engine::functions::list``)."""
        result = await self.trigger_async({"function_id": "engine::functions::list", "payload": {}})
        return [FunctionInfo.model_validate(f) for f in result.get("functions", [])]

    async def list_workers(self) -> list[WorkerInfo]:
        """Connected workers (``engine::workers::list``)."""
        result = await self.trigger_async({"function_id": "engine::workers::list", "payload": {}})
        return [WorkerInfo.model_validate(w) for w in result.get("workers", [])]

    async def create_channel(self, buffer_size: int | None = None) -> Channel:
        """A new data channel (``engine::channels::create``, protocol.md §6.1).

        ``buffer_size`` is in frames (engine default 64, max 1024). Hand ``reader_ref`` /
        ``writer_ref`` to another function inside its payload.
        """
        refs = await self.trigger_async(
            {
                "function_id": "engine::channels::create",
                "payload": {"buffer_size": buffer_size},
                "namespace": "default",
            }
        )
        writer_ref = StreamChannelRef.model_validate(refs["writer"])
        reader_ref = StreamChannelRef.model_validate(refs["reader"])
        address, headers, loop = self._config.address, self._config.headers, self.loop
        return Channel(
            writer=ChannelWriter(address, writer_ref, headers, loop=loop),
            reader=ChannelReader(address, reader_ref, headers, loop=loop),
            writer_ref=writer_ref,
            reader_ref=reader_ref,
        )

    def on_functions_available(
        self, callback: Callable[[list[FunctionInfo]], Any]
    ) -> Callable[[], None]:
        """Call ``callback(functions)`` whenever the engine's function set changes.

        Built on the ``engine::functions-available`` trigger type (protocol.md §5.5) with a
        private function on this worker. Returns an unsubscribe function.
        """
        function_id = f"iii::functions-available::{uuid.uuid4().hex[:12]}"

        async def on_change(data: Any) -> None:
            functions = [FunctionInfo.model_validate(f) for f in (data or {}).get("functions", [])]
            outcome = callback(functions)
            if asyncio.iscoroutine(outcome):
                await outcome

        ref = self.register_function(
            function_id, on_change, metadata={"internal": True}, description="functions watcher"
        )
        trigger = self.register_trigger(
            {"type": "engine::functions-available", "function_id": function_id, "config": {}}
        )

        def unsubscribe() -> None:
            trigger.unregister()
            ref.unregister()

        return unsubscribe


def _log_start_failure(future: concurrent.futures.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        logger.error("iii: the client could not connect: %s", future.exception())


def register_worker(address: str | None = None, options: InitOptions | None = None) -> III:
    """Create a client on its own event-loop thread and connect it (seeds 001/002).

    Waits up to 30 s for the connection; after that it logs a warning and returns the client,
    which keeps retrying in the background. Raises :class:`RegistrationRejectedError` when the
    engine refused the worker, ``ConnectionError`` when retries ran out (``max_retries``).
    Call ``shutdown()`` to stop the loop thread (it is non-daemon, so it keeps the process alive
    to serve functions).
    """
    client = III(address, options)
    client._start_background_loop()
    loop = client.loop
    assert loop is not None
    future = asyncio.run_coroutine_threadsafe(client._start(CONNECT_WAIT_S, keep_trying=True), loop)
    try:
        future.result()
    except BaseException:
        client.shutdown()
        raise
    return client
