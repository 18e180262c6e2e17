"""The engine core: frame dispatch, namespace buffering, reattach, teardown (protocol.md §1–3).

:class:`EngineCore` owns the registries, the invocation router, the trigger service, the channel
store and the ``engine::*`` functions; the worker manager's listener hands every worker socket to
it. Built-in workers are added with :meth:`EngineCore.add_worker` by the composition module.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pydantic_core

from iii.protocol import ErrorBody, Frame, ProtocolError, error_body, invocation_result

from ..config.engine import EngineConfig
from .budget import ByteBudget
from .builtins import Builtins
from .channels import ChannelStore
from .connection import WorkerConnection
from .discovery import EventTriggerProvider, poll_functions
from .errors import InvocationError
from .invocation import Invoker
from .logs import RateLimitedLogger, truncate
from .ownership import FORBIDDEN, Refusal, function_refusal, trigger_type_refusal
from .registry import (
    DEFAULT_NAMESPACE,
    BuiltinHandler,
    FailedFunction,
    FunctionEntry,
    Registry,
    Trigger,
    TriggerType,
)
from .tracing import EngineTracer
from .triggers import Triggers
from .worker import BuiltinWorker, FunctionGuard, FunctionPreparer

__all__ = ["EngineCore"]

logger = logging.getLogger("iii_asgi.engine")
#: Warnings about a worker's bad input: rate-limited per log site, long fields truncated.
bad_input = RateLimitedLogger(logger)

#: Frames queued while a connection's namespace is not known yet (§1.5).
BUFFERED = frozenset(
    {
        "registerfunction",
        "unregisterfunction",
        "registertrigger",
        "unregistertrigger",
        "registertriggertype",
        "unregistertriggertype",
        "registerservice",
    }
)
_Handler = Callable[[WorkerConnection, Frame], Awaitable[None]]


class EngineCore:
    """Everything behind the worker socket of one engine."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.registry = Registry()
        self.tracing = EngineTracer(config)
        self.invoker = Invoker(
            self.registry,
            self.tracing,
            max_inflight=config.max_inflight_invocations,
            timeout_ms=config.invocation_timeout_ms,
        )
        self.triggers = Triggers(self.registry, config.trigger_ack_timeout_s)
        #: Frames held by the worker listeners' sockets (``frame_budget_bytes``, issue 13).
        self.frames = ByteBudget(config.frame_budget_bytes)
        self.channels = ChannelStore(
            config.channel_ttl_s,
            max_bytes=config.channel_max_bytes,
            budget=ByteBudget(config.channel_budget_bytes),
        )
        #: Executes ``registerfunction.invocation`` (§4); set by the ``iii-http-functions``
        #: worker. ``None``: such registrations fail.
        self.function_preparer: FunctionPreparer | None = None
        #: Extra registration checks of built-in workers (e.g. custom-stream overrides).
        self.function_guards: list[FunctionGuard] = []
        self.builtins = Builtins(self)
        self.builtins.install()
        self.workers: list[BuiltinWorker] = []
        self.workers_available = EventTriggerProvider(self.invoker)
        self.functions_available = EventTriggerProvider(self.invoker)
        self.triggers.register_in_process(
            "engine::workers-available",
            "Fires when workers connect, disconnect or update",
            self.workers_available,
        )
        self.triggers.register_in_process(
            "engine::functions-available",
            "Fires when the set of functions changes",
            self.functions_available,
        )
        self.connections: set[WorkerConnection] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._registration: dict[str, _Handler] = {
            "registerfunction": self._register_function,
            "unregisterfunction": self._unregister_function,
            "registertrigger": self._register_trigger,
            "unregistertrigger": self._unregister_trigger,
            "registertriggertype": self._register_trigger_type,
            "unregistertriggertype": self._unregister_trigger_type,
            "registerservice": self._register_service,
        }
        self._other: dict[str, _Handler] = {
            "triggerregistrationresult": self.triggers.handle_ack,
            "reattach": self._reattach,
            "ping": self._ping,
            "pong": self._ignore,
        }

    # -- lifecycle -----------------------------------------------------------------------------

    def add_worker(self, worker: BuiltinWorker) -> None:
        """Install a built-in worker: it registers its functions and trigger types now, and
        follows the core's lifecycle (started in order, stopped in reverse order)."""
        worker.install()
        self.workers.append(worker)

    async def start(self) -> None:
        """Start every worker in installation order, then the core's background tasks (channel
        sweep, call deadlines, functions poll) on the running loop. A worker's failure
        propagates (the caller runs :meth:`shutdown`)."""
        for worker in self.workers:
            await worker.start()
        loop = asyncio.get_running_loop()
        self._tasks.add(
            loop.create_task(self.channels.sweep_forever(self.config.channel_sweep_interval_s))
        )
        self._tasks.add(loop.create_task(self.invoker.expire_forever()))
        self._tasks.add(
            loop.create_task(
                poll_functions(
                    self.functions_available,
                    lambda: frozenset(self.registry.functions),
                    self.builtins.public_summaries,
                    self.config.functions_poll_interval_s,
                )
            )
        )

    async def shutdown(self) -> None:
        """Stop the workers' deliveries, stop background tasks, close every worker socket and
        channel, run every teardown, then close the workers."""
        for worker in reversed(self.workers):  # before teardown: stopped deliveries are not
            await worker.stop()  # failures
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for conn in list(self.connections):
            conn.close()
        self.channels.close_all()
        await asyncio.gather(*(self.teardown(c) for c in list(self.connections)))
        await self.invoker.cancel_tasks()
        for worker in reversed(self.workers):
            await worker.close()
        self.tracing.shutdown()

    def spawn(self, coro: Awaitable[Any]) -> None:
        """Run a coroutine in the background, keeping a reference until it ends."""

        async def run() -> None:
            try:
                await coro
            except Exception:
                logger.exception("background task failed")

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- connection lifecycle (§1.3, §1.8) -----------------------------------------------------

    async def attach(self, conn: WorkerConnection) -> None:
        """Register a new connection, send ``workerregistered`` (no ``features``), start the
        registration grace timer (§1.5) and fire ``worker_connected`` (§5.5)."""
        self.registry.workers[conn.worker_id] = conn
        self.connections.add(conn)
        conn.start_writer()
        await conn.send(
            {
                "type": "workerregistered",
                "worker_id": conn.worker_id,
                "reattach_token": conn.reattach_token,
            }
        )
        conn.grace_handle = asyncio.get_running_loop().call_later(
            self.config.registration_grace_ms / 1000, self._grace_expired, conn
        )
        self.workers_available.fire({"event": "worker_connected", "worker_id": conn.worker_id})

    async def teardown(self, conn: WorkerConnection) -> None:
        """Run the §1.8 cleanup exactly once; concurrent callers wait for it."""
        if conn.teardown_started:
            await conn.torn_down.wait()
            return
        conn.teardown_started = True
        conn.alive = False
        try:
            if conn.grace_handle is not None:
                conn.grace_handle.cancel()
            conn.buffer = None  # 1. queued registrations are discarded
            for namespace, function_id in conn.functions:  # 2. owner-checked removal
                self.registry.remove_function(namespace, function_id, conn)
            conn.functions.clear()
            await self.invoker.stop_inflight(conn)  # 3. invocation_stopped
            await self.triggers.remove_connection(conn)  # 4. triggers and trigger types
            self.channels.delete_owned(conn)  # 5. owned channels
            if conn.name is not None:  # 6. name lease, registry, event
                key = (conn.namespace or DEFAULT_NAMESPACE, conn.name)
                if self.registry.worker_names.get(key) is conn:
                    del self.registry.worker_names[key]
            if self.registry.workers.get(conn.worker_id) is conn:
                del self.registry.workers[conn.worker_id]
            self.connections.discard(conn)
        finally:
            conn.torn_down.set()
        self.workers_available.fire({"event": "worker_disconnected", "worker_id": conn.worker_id})

    # -- namespace buffering (§1.5) ------------------------------------------------------------

    def _grace_expired(self, conn: WorkerConnection) -> None:
        if conn.namespace is None and conn.alive:
            logger.info("%r sent no engine::workers::register in time: namespace default", conn)
            conn.namespace = DEFAULT_NAMESPACE
            self.spawn(self._drain(conn))

    async def resolve_namespace(self, conn: WorkerConnection, namespace: str) -> None:
        """Fix a pending connection's namespace and replay its buffered registrations in order."""
        if conn.namespace is not None:
            return
        if conn.grace_handle is not None:
            conn.grace_handle.cancel()
        conn.namespace = namespace
        await self._drain(conn)

    async def _drain(self, conn: WorkerConnection) -> None:
        buffer = conn.buffer
        try:
            while buffer and conn.alive:
                frame, _raw = buffer.pop(0)
                try:
                    await self._registration[frame["type"]](conn, frame)
                except Exception:
                    logger.exception("buffered %s from %r failed", frame["type"], conn)
        finally:
            if conn.buffer is buffer:
                conn.buffer = None

    async def claim_name(self, conn: WorkerConnection, namespace: str, name: str) -> bool:
        """Take the worker-name lease, or reject (WORKER_NAMESPACE_CONFLICT) and close (§1.10)."""
        key = (namespace, name)
        holder = self.registry.worker_names.get(key)
        if holder is not None and holder is not conn and holder.alive:
            await conn.send(
                {
                    "type": "registrationrejected",
                    "code": "WORKER_NAMESPACE_CONFLICT",
                    "namespace": namespace,
                    "worker_name": name,
                    "owner_worker_id": holder.worker_id,
                }
            )
            conn.close()
            return False
        if conn.name is not None:
            old = (conn.namespace or DEFAULT_NAMESPACE, conn.name)
            if self.registry.worker_names.get(old) is conn:
                del self.registry.worker_names[old]
        self.registry.worker_names[key] = conn
        return True

    # -- inbound frames (§2) -------------------------------------------------------------------

    async def dispatch(self, conn: WorkerConnection, frame: Frame, raw: str | bytes) -> None:
        """Handle one decoded frame of ``conn``; called in arrival order by its read loop."""
        kind = frame["type"]
        if kind == "invokefunction":
            await self.invoker.handle_invoke(conn, frame)
        elif kind == "invocationresult":
            await self.invoker.handle_result(frame, raw)
        elif kind in BUFFERED:
            if conn.buffer is not None:
                conn.buffer.append((frame, raw))
            else:
                await self._registration[kind](conn, frame)
        else:
            handler = self._other.get(kind)
            if handler is None:
                bad_input.warning(
                    "unknown_frame",
                    "ignoring %r frame from %r: not handled by this engine",
                    truncate(kind, 100),
                    conn,
                )
            else:
                await handler(conn, frame)

    async def bad_frame(self, conn: WorkerConnection, raw: str | bytes, exc: ProtocolError) -> None:
        """Log a frame that failed to decode; answer a malformed ``invokefunction`` that carried
        an ``invocation_id`` with ``deserialization_error`` so its caller does not time out."""
        bad_input.warning("bad_frame", "dropping malformed frame from %r: %s", conn, truncate(exc))
        if exc.invocation_id is None:
            return
        try:
            frame = pydantic_core.from_json(raw)
        except ValueError:
            return
        if isinstance(frame, dict) and frame.get("type") == "invokefunction":
            function_id = frame.get("function_id")
            await conn.send(
                invocation_result(
                    exc.invocation_id,
                    function_id if isinstance(function_id, str) else "",
                    error=error_body("deserialization_error", str(exc)),
                )
            )

    async def _ignore(self, conn: WorkerConnection, frame: Frame) -> None:
        return None

    async def _ping(self, conn: WorkerConnection, frame: Frame) -> None:
        await conn.send({"type": "pong"})

    async def _reattach(self, conn: WorkerConnection, frame: Frame) -> None:
        """Evict a reconnecting worker's previous connection; wait for its teardown (§1.9)."""
        old = self.registry.workers.get(frame["previous_worker_id"])
        token = frame.get("reattach_token")
        if old is None or old is conn or token is None or token != old.reattach_token:
            logger.info("reattach from %r ignored", conn)
            return
        old.evicted = True
        old.close()
        try:
            await asyncio.wait_for(
                asyncio.shield(old.torn_down.wait()), self.config.reattach_timeout_s
            )
        except asyncio.TimeoutError:
            await self.teardown(old)

    # -- registrations (§2.4–§2.11, §2.14) -----------------------------------------------------

    def _namespace(self, conn: WorkerConnection) -> str:
        return conn.namespace or DEFAULT_NAMESPACE

    def function_refusal(
        self, conn: WorkerConnection, namespace: str, function_id: str
    ) -> Refusal | None:
        """Why ``conn`` may not register ``function_id`` in ``namespace`` (the ownership rules
        of :mod:`.ownership`, then every worker's :class:`~.worker.FunctionGuard`), or ``None``."""
        refusal = function_refusal(self.registry, conn, namespace, function_id)
        for guard in self.function_guards:
            if refusal is not None:
                break
            refusal = guard(conn, namespace, function_id)
        return refusal

    async def _register_function(self, conn: WorkerConnection, frame: Frame) -> None:
        local_id: str = frame["id"]
        if conn.session is not None:  # §8.5, §8.6: hook, prefix, or refused
            checked = await conn.session.register_function(conn, frame)
            if checked is None:
                return
            frame = checked
        function_id: str = frame["id"]
        namespace = self._namespace(conn)
        refusal = self.function_refusal(conn, namespace, function_id)
        if refusal is not None:
            await self._reject_function(conn, namespace, function_id, refusal)
            return
        handler: BuiltinHandler | None = None
        invocation = frame.get("invocation")
        if invocation is not None:  # §2.4 step 6, §4.1
            prepared = await self._prepare(function_id, namespace, invocation)
            refusal = self.function_refusal(conn, namespace, function_id)  # DNS lookup awaited
            if refusal is not None:
                await self._reject_function(conn, namespace, function_id, refusal)
                return
            if isinstance(prepared, FailedFunction):
                prepared.owner = conn
                self.registry.add_failed_function(prepared)
                conn.functions.add((namespace, function_id))
                # Report it to the worker: an ``error`` frame, which the official SDK ignores
                # (protocol.md §1.3) and ours logs; registrationrejected would be fatal there.
                await conn.send(
                    {
                        "type": "error",
                        "error": {"code": prepared.code, "message": prepared.message},
                        "function_id": function_id,
                        "namespace": namespace,
                    }
                )
                return
            handler = prepared
        self.registry.add_function(
            FunctionEntry(
                function_id,
                namespace,
                owner=conn,
                handler=handler,
                description=frame.get("description"),
                request_format=frame.get("request_format"),
                response_format=frame.get("response_format"),
                metadata=frame.get("metadata"),
                local_id=local_id,
            )
        )
        conn.functions.add((namespace, function_id))

    async def _prepare(
        self, function_id: str, namespace: str, invocation: Any
    ) -> BuiltinHandler | FailedFunction:
        if self.function_preparer is None:
            return FailedFunction(
                function_id,
                namespace,
                "HTTP_FUNCTIONS_DISABLED",
                "HTTP-invoked functions need the iii-http-functions worker",
            )
        return await self.function_preparer.prepare(function_id, namespace, invocation)

    async def _reject_function(
        self, conn: WorkerConnection, namespace: str, function_id: str, refusal: Refusal
    ) -> None:
        bad_input.warning(
            "function_conflict",
            "%r may not register %s in %s: %s",
            conn,
            truncate(function_id, 200),
            truncate(namespace, 100),
            refusal,
        )
        await conn.send(
            {
                "type": "registrationrejected",
                "code": "FUNCTION_NAMESPACE_CONFLICT",
                "namespace": namespace,
                "function_id": function_id,
                "owner_worker_id": refusal.owner_id,
            }
        )

    async def _unregister_function(self, conn: WorkerConnection, frame: Frame) -> None:
        namespace = self._namespace(conn)
        function_id: str = frame["id"]
        if conn.session is not None:
            function_id = self._registered_id(conn, namespace, function_id)
        key = (namespace, function_id)
        if self.registry.remove_function(*key, conn):
            conn.functions.discard(key)

    def _registered_id(self, conn: WorkerConnection, namespace: str, local_id: str) -> str:
        """The id ``conn`` registered ``local_id`` under (renamed by a hook, prefixed, §8.6)."""
        for space, function_id in conn.functions:
            entry = self.registry.functions.get((space, function_id))
            if space == namespace and entry is not None and entry.local_id == local_id:
                return function_id
        prefix = conn.session.prefix if conn.session is not None else None
        return f"{prefix}::{local_id}" if prefix else local_id

    async def _register_trigger(self, conn: WorkerConnection, frame: Frame) -> None:
        namespace = frame.get("namespace")
        trigger_namespace = frame.get("trigger_namespace")
        if (namespace is not None and not namespace.strip()) or (
            trigger_namespace is not None and not trigger_namespace.strip()
        ):
            blank = error_body("INVALID_NAMESPACE", "namespace must not be blank")
            await self._trigger_error(conn, frame, blank)
            return
        if conn.session is not None:  # §8.5: allowed types, hook, prefix, target check
            checked = await conn.session.register_trigger(conn, frame)
            if checked is None:
                return
            frame = checked
        trigger = Trigger(
            frame["id"],
            frame["trigger_type"],
            frame["function_id"],
            config=frame.get("config"),
            metadata=frame.get("metadata"),
            namespace=namespace or DEFAULT_NAMESPACE,
            trigger_namespace=trigger_namespace,
            owner=conn,
            home_namespace=self._namespace(conn),
        )
        error = await self.triggers.register(trigger)
        if error is not None:
            await self._trigger_error(conn, frame, error)

    async def _trigger_error(self, conn: WorkerConnection, frame: Frame, error: ErrorBody) -> None:
        """A failed ``triggerregistrationresult`` (§2.11) for a ``registertrigger`` frame, or for
        a ``registertriggertype`` (``function_id`` empty)."""
        await conn.send(
            {
                "type": "triggerregistrationresult",
                "id": frame["id"],
                "trigger_type": frame.get("trigger_type", frame["id"]),
                "function_id": frame.get("function_id", ""),
                "error": error,
            }
        )

    async def _unregister_trigger(self, conn: WorkerConnection, frame: Frame) -> None:
        """Remove one of ``conn``'s bindings; another's (or a durable one) is refused: logged,
        no reply (§2.10 has none)."""
        with contextlib.suppress(InvocationError):
            await self.triggers.unregister(frame["id"], conn, durable_ok=False)

    async def _register_trigger_type(self, conn: WorkerConnection, frame: Frame) -> None:
        namespace = frame.get("namespace")
        if namespace is not None and (not isinstance(namespace, str) or not namespace.strip()):
            bad_input.warning(
                "trigger_type_namespace",
                "registertriggertype %s from %r: invalid namespace",
                truncate(frame["id"], 200),
                conn,
            )
            return
        if conn.session is not None:  # §8.5: allow_trigger_type_registration, hook
            checked = await conn.session.register_trigger_type(conn, frame)
            if checked is None:
                return
            frame = checked
        namespace = namespace or self._namespace(conn)
        refusal = trigger_type_refusal(self.registry, conn, namespace, frame["id"])
        if refusal is not None:
            logger.warning("refused registertriggertype %s from %r: %s", frame["id"], conn, refusal)
            await self._trigger_error(conn, frame, error_body(FORBIDDEN, refusal))
            return
        ttype = TriggerType(
            frame["id"],
            namespace,
            frame.get("description") or "",
            conn,
            trigger_request_format=frame.get("trigger_request_format"),
            call_request_format=frame.get("call_request_format"),
        )
        conn.trigger_types.add((ttype.namespace, ttype.id))
        await self.triggers.register_type(ttype)

    async def _unregister_trigger_type(self, conn: WorkerConnection, frame: Frame) -> None:
        namespace = frame.get("namespace")
        if not isinstance(namespace, str) or not namespace.strip():
            namespace = self._namespace(conn)
        conn.trigger_types.discard((namespace, frame["id"]))
        await self.triggers.unregister_type(namespace, frame["id"], conn)

    async def _register_service(self, conn: WorkerConnection, frame: Frame) -> None:
        namespace = self._namespace(conn)
        self.registry.services[(namespace, frame["id"])] = {
            "id": frame["id"],
            "name": frame.get("name") or frame["id"],
            "description": frame.get("description"),
            "parent_service_id": frame.get("parent_service_id"),
            "namespace": namespace,
        }
