"""Invocations both ways (protocol.md §3): the calls this worker makes (``invokefunction`` out,
``invocationresult`` back, timeouts) and the calls it serves (run the handler, reply).

Outbound calls run on the caller's loop; only the encoded frame crosses to the client's loop
(when they differ) and the result comes back by ``call_soon_threadsafe``. A call's frame carries
its timeout (``timeout_ms``, an iii-asgi extension the real engine ignores), so our engine can
stop the call at the executor when it expires.

Async handlers run on the client's loop, sync ones on a thread pool
(``InitOptions.max_handler_threads``). At most ``InitOptions.max_concurrent_handlers`` run at
once; more wait as frames in a bounded backlog, and past that the connection stops reading
(:mod:`._slots`). An ``invocationresult`` for an invocation this worker is running or holding
means the engine stopped it (the caller's timeout expired): the handler's task is cancelled, or
the waiting frame dropped, and nothing is replied (a sync handler's thread cannot be
interrupted; its result is dropped).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import traceback
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import protocol as wire
from ._config import ClientConfig
from ._connection import Connection, Outgoing
from ._frozen import build
from ._handlers import LocalFunction
from ._loop import ClientLoop
from ._pending import Pending, PendingCalls, ThreadPending
from ._slots import HandlerSlots
from ._threads import HandlerPool
from .channels import resolve_channel_refs
from .context import (
    InvocationContext,
    _early,
    current_invocation,
    enter_invocation,
    exit_invocation,
)
from .errors import IIIInvocationError, error_from_body, timeout_error
from .http import HttpInvocationConfig
from .observability._invocation import end_execution, outgoing, start_execution
from .types import EnqueueResult, TriggerActionEnqueue, TriggerActionVoid, TriggerRequest

__all__ = ["Invoker", "to_request"]

logger = logging.getLogger("iii.client")

_REQUEST_KEYS = frozenset(TriggerRequest.model_fields)


def to_request(request: TriggerRequest | Mapping[str, Any]) -> TriggerRequest:
    """Normalise a trigger request; plain dicts skip pydantic validation on the hot path.

    Raises ``TypeError`` / ``ValueError`` (pydantic ``ValidationError``) for a bad request.
    """
    if isinstance(request, TriggerRequest):
        return request
    if not isinstance(request, Mapping):
        raise TypeError(f"trigger() takes a dict or TriggerRequest, not {type(request).__name__}")
    action = request.get("action")
    timeout_ms = request.get("timeout_ms")
    namespace = request.get("namespace")
    if (
        isinstance(request.get("function_id"), str)
        and (action is None or isinstance(action, (TriggerActionVoid, TriggerActionEnqueue)))
        and (timeout_ms is None or (isinstance(timeout_ms, int) and timeout_ms > 0))
        and (namespace is None or isinstance(namespace, str))
        and _REQUEST_KEYS.issuperset(request)
    ):
        return TriggerRequest.model_construct(
            function_id=request["function_id"],
            payload=request.get("payload"),
            action=action,
            timeout_ms=timeout_ms,
            metadata=request.get("metadata"),
            namespace=namespace,
            dispatch=request.get("dispatch"),
        )
    return TriggerRequest.model_validate(dict(request))


@dataclass(slots=True)
class _Call:
    """One outbound call, prepared on the caller's thread: ``item`` is its packed frame;
    ``invocation_id`` is ``None`` for a void call."""

    function_id: str
    invocation_id: str | None
    enqueue: bool
    timeout_ms: int
    item: Outgoing

    def outcome(self, result: Any) -> Any:
        """The caller's view of ``result``: an :class:`EnqueueResult` for an enqueue."""
        if self.enqueue and isinstance(result, dict):
            return EnqueueResult.model_validate(result)
        return result


class Invoker:
    """One client's invocations. ``functions`` is the client's registered functions (read
    here, owned by its registrations); ``pending`` its calls waiting for a result."""

    def __init__(
        self,
        config: ClientConfig,
        client_loop: ClientLoop,
        conn: Connection,
        pending: PendingCalls,
        functions: Mapping[str, LocalFunction | HttpInvocationConfig],
    ) -> None:
        self._config = config
        self._client_loop = client_loop
        self._conn = conn
        self._pending = pending
        self._functions = functions
        self._executor: HandlerPool | None = None
        #: Handlers running at once (``InitOptions.max_concurrent_handlers``) and the backlog.
        self.slots = HandlerSlots(config.options.max_concurrent_handlers)
        self.slots.on_free = self._drain
        #: Tasks of the handlers running, by invocation id (until the handler returned).
        self._serving: dict[str, asyncio.Task[Any]] = {}
        #: Calls of blocked threads for the loop to send (:meth:`_post_from_thread`).
        self._from_threads: deque[tuple[Outgoing, str | None]] = deque()
        self._draining_scheduled = False

    # ------------------------------------------------------------------ outbound

    def require_loop(self) -> asyncio.AbstractEventLoop:
        """The client's loop; raises the engine's :class:`RegistrationRejectedError` when it
        refused the worker, ``RuntimeError`` when the client never connected."""
        if self._conn.rejected is not None:
            raise self._conn.rejected
        loop = self._client_loop.loop
        if loop is None:
            raise RuntimeError(
                "the client is not connected: use register_worker() or `await client.connect()`"
            )
        return loop

    def _prepare(self, request: TriggerRequest) -> _Call:
        """Check a call and build its packed frame, on the caller's thread (its trace context
        goes into the frame, protocol.md §3.6)."""
        conn = self._conn
        if conn.rejected is not None:
            raise conn.rejected
        if conn.closing and conn.run_task is None:
            raise IIIInvocationError(
                "SHUTDOWN", "client is shut down", function_id=request.function_id
            )
        function_id = request.function_id
        namespace = request.namespace
        if namespace is not None and not namespace.strip():
            raise ValueError("namespace is empty: pass a non-blank name or leave it unset")
        if namespace is None:
            if function_id.startswith(("engine::", "configuration::")):
                namespace = "default"
            else:
                namespace = self._config.namespace
        action = request.action
        traceparent, baggage = outgoing()  # protocol.md §3.6
        invocation_id: str | None = None
        wire_action: Any = None
        timeout_ms = request.timeout_ms or self._config.options.invocation_timeout_ms
        wire_timeout_ms: int | None = None  # a void call has no deadline on the wire
        if isinstance(action, TriggerActionVoid):
            wire_action = {"type": "void"}
        else:
            invocation_id = str(uuid.uuid4())
            wire_timeout_ms = timeout_ms
            if isinstance(action, TriggerActionEnqueue):
                wire_action = {"type": "enqueue", "queue": action.queue}
        frame = wire.invoke_function(
            function_id,
            request.payload,
            invocation_id=invocation_id,
            action=wire_action,
            metadata=request.metadata,
            namespace=namespace,
            traceparent=traceparent,
            baggage=baggage,
            timeout_ms=wire_timeout_ms,
        )
        enqueue = isinstance(action, TriggerActionEnqueue)
        return _Call(function_id, invocation_id, enqueue, timeout_ms, conn.pack(frame))

    async def invoke(self, request: TriggerRequest) -> Any:
        """Run one call on the caller's loop (see ``III.trigger`` for results and errors)."""
        call = self._prepare(request)
        invocation_id = call.invocation_id
        if invocation_id is None:
            await self._deliver(call.item, None)
            return None
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending[invocation_id] = Pending(future, call.function_id, None)
        timer = loop.call_later(
            call.timeout_ms / 1000, self._expire, invocation_id, call.function_id, call.timeout_ms
        )
        serving = current_invocation()  # inside one of our handlers: it holds no slot now
        slots = (
            self.slots
            if serving is not None and serving.worker_id == self._conn.worker_id
            else None
        )
        if slots is not None:
            slots.idle()
        try:
            await self._deliver(call.item, invocation_id)
            result = await future
        finally:
            timer.cancel()
            self._pending.pop(invocation_id, None)
            if slots is not None:
                slots.resume()
        return call.outcome(result)

    def invoke_sync(self, request: TriggerRequest, loop: asyncio.AbstractEventLoop) -> Any:
        """Run one call from a thread other than the client's loop thread, blocking it (``III.
        trigger``): the frame is built and packed here, one ``call_soon_threadsafe`` hands it
        to ``loop``, and this thread waits on a lock the result releases (no task, no future).
        Same results, errors and timeouts as :meth:`invoke`."""
        call = self._prepare(request)
        invocation_id = call.invocation_id
        if invocation_id is None:
            self._post_from_thread(loop, call.item, None)
            return None
        waiter = ThreadPending(call.function_id)
        self._pending[invocation_id] = waiter
        try:
            self._post_from_thread(loop, call.item, invocation_id)
        except BaseException:  # the loop is closed
            self._pending.pop(invocation_id, None)
            raise
        if not waiter.wait(call.timeout_ms / 1000):
            if self._pending.pop(invocation_id, None) is waiter:
                raise timeout_error(call.function_id, call.timeout_ms, invocation_id)
            waiter.wait(None)  # settled as the timeout expired: take that outcome
        return call.outcome(waiter.outcome())

    def _post_from_thread(
        self, loop: asyncio.AbstractEventLoop, item: Outgoing, invocation_id: str | None
    ) -> None:
        """Hand a packed call to ``loop`` from another thread. Calls posted by many threads
        while the loop is busy share one wake-up (one ``call_soon_threadsafe``, one write to
        the loop's self-pipe) instead of one each. Raises ``RuntimeError`` when ``loop`` is
        closed (the call is not sent)."""
        queue = self._from_threads
        queue.append((item, invocation_id))
        if self._draining_scheduled:
            return  # the scheduled drain has not started: it takes this call too
        self._draining_scheduled = True
        try:
            loop.call_soon_threadsafe(self._drain_from_threads)
        except BaseException:
            self._draining_scheduled = False
            with contextlib.suppress(ValueError):
                queue.remove((item, invocation_id))
            raise

    def _drain_from_threads(self) -> None:
        """Send every call threads posted (loop thread)."""
        self._draining_scheduled = False  # before taking: a call posted from now on wakes again
        queue, post = self._from_threads, self._conn.post_text
        while queue:
            item, invocation_id = queue.popleft()
            post(item, invocation_id)

    async def _deliver(self, text: Outgoing, invocation_id: str | None) -> None:
        """Hand a packed invocation to the connection, from the caller's loop."""
        conn = self._conn
        if self._client_loop.on_loop_thread():
            if conn.enqueue_text(text, "invokefunction", invocation_id):
                await conn.flush()
            return
        loop = self._client_loop.loop
        assert loop is not None
        self._post_from_thread(loop, text, invocation_id)  # calls from many tasks: one wake-up

    def _expire(self, invocation_id: str, function_id: str, timeout_ms: int) -> None:
        pending = self._pending.pop(invocation_id, None)
        if pending is not None:
            pending.settle(error=timeout_error(function_id, timeout_ms, invocation_id))

    def on_result(self, frame: wire.Frame) -> None:
        """An ``invocationresult``: settle the call it answers (§3.2). For an invocation this
        worker is still running it is the engine's stop notice: the handler is cancelled."""
        invocation_id = frame["invocation_id"]
        serving = self._serving.pop(invocation_id, None)
        if serving is not None:
            serving.cancel()
        elif self.slots.drop(invocation_id):
            return
        pending = self._pending.pop(invocation_id, None)
        if pending is None:
            return
        error = frame.get("error")
        if error is not None:
            pending.settle(
                error=error_from_body(
                    error, function_id=pending.function_id, invocation_id=frame["invocation_id"]
                )
            )
        else:
            pending.settle(frame.get("result"))

    # ------------------------------------------------------------------ inbound

    def serve(self, frame: wire.Frame) -> None:
        """Run the handler of an ``invokefunction`` in its own task (loop thread only) once a
        slot is free; answer at once with ``WORKER_BACKPRESSURE`` when ``SHED_FACTOR ×
        max_concurrent_handlers`` handlers are running already."""
        slots = self.slots
        if slots.busy < slots.limit and not slots.waiting and slots.running < slots.shed_at:
            self._start(frame)  # the common case, in attribute reads
            return
        invocation_id: str | None = frame.get("invocation_id")
        if slots.running >= slots.shed_at:
            if invocation_id is not None:
                self._conn.post(
                    wire.invocation_result(
                        invocation_id,
                        frame["function_id"],
                        error=wire.error_body(
                            "WORKER_BACKPRESSURE",
                            f"worker runs {slots.running} handlers already "
                            f"(max_concurrent_handlers {slots.limit})",
                        ),
                    )
                )
            return
        if slots.admit(frame):
            self._start(frame)
        else:
            self._drain()

    def _start(self, frame: wire.Frame) -> None:
        slots = self.slots
        slots.busy += 1
        slots.running += 1
        loop = self._client_loop.loop
        assert loop is not None  # frames are served on the client's loop
        task = loop.create_task(self.on_invoke(frame))
        self._client_loop.tasks.add(task)  # cancelled on shutdown, like spawn()'s
        invocation_id = frame.get("invocation_id")
        if invocation_id is not None:
            self._serving[invocation_id] = task
        task.add_done_callback(self._served)

    def _served(self, task: asyncio.Task[Any]) -> None:
        self._client_loop.tasks.discard(task)
        slots = self.slots
        slots.running -= 1
        slots.busy -= 1
        if slots.waiting:
            self._drain()

    def _drain(self) -> None:
        """Start backlog frames while slots are free."""
        while (frame := self.slots.next()) is not None:
            self._start(frame)

    async def on_invoke(self, frame: wire.Frame) -> None:
        """An ``invokefunction`` for this worker: run the handler in its span, then reply
        unless the caller asked for none (§3.1, sdk_surface.md §3.5)."""
        function_id: str = frame["function_id"]
        invocation_id: str | None = frame.get("invocation_id")
        fn = self._functions.get(function_id)
        result: Any = None
        error: wire.ErrorBody | None = None
        traceparent: str | None = None
        if fn is None:
            error = wire.error_body("function_not_found", f"Function '{function_id}' not found")
        elif isinstance(fn, HttpInvocationConfig):
            error = wire.error_body(
                "function_not_invokable",
                f"Function '{function_id}' is HTTP-invoked; the engine calls its URL",
            )
        else:
            # The handler's span: child of the caller's traceparent (sdk_surface.md §3.5).
            execution = start_execution(
                function_id,
                invocation_id,
                frame.get("traceparent"),
                frame.get("baggage"),
                frame.get("data"),
            )
            try:
                result = await self._call_handler(fn, frame, execution)
            except asyncio.CancelledError as exc:
                end_execution(execution, error=exc)
                raise
            except BaseException as exc:  # SystemExit/KeyboardInterrupt must not stop the loop
                end_execution(execution, error=exc)
                logger.exception("Error in handler %s", function_id)
                error = wire.error_body(
                    "invocation_failed",
                    str(exc) or type(exc).__name__,
                    "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
                )
            else:
                end_execution(execution, result)
            if execution is not None:
                traceparent = execution.traceparent
        if invocation_id is None:
            return
        if self._serving.pop(invocation_id, None) is None:
            # The engine stopped it meanwhile (a sync handler ran to its end anyway), or the
            # handler answered early (:func:`iii.context.early_answer`).
            return
        await self._reply(invocation_id, function_id, result, error, traceparent)

    def answer_now(
        self, invocation_id: str, function_id: str, result: Any, traceparent: str | None
    ) -> bool:
        """Reply to an invocation this worker is serving before its handler returns (loop
        thread only; :func:`iii.context.early_answer`): ``False`` when it was answered or
        stopped already. ``result`` must be JSON values built for this answer alone: the
        in-process transport hands it over as it is. On a socket, a result that is not JSON is
        answered as ``invocation_failed``."""
        if self._serving.pop(invocation_id, None) is None:
            return False
        frame = wire.invocation_result(
            invocation_id, function_id, result=result, traceparent=traceparent
        )
        try:
            self._conn.post_owned(frame)
        except TypeError as exc:
            self._conn.post(
                wire.invocation_result(
                    invocation_id,
                    function_id,
                    error=wire.error_body("invocation_failed", f"result is not JSON: {exc}"),
                )
            )
        return True

    async def _reply(
        self,
        invocation_id: str,
        function_id: str,
        result: Any,
        error: wire.ErrorBody | None,
        traceparent: str | None = None,
    ) -> None:
        send = self._conn.send
        try:
            await send(
                wire.invocation_result(
                    invocation_id, function_id, result=result, error=error, traceparent=traceparent
                )
            )
        except TypeError as exc:
            await send(
                wire.invocation_result(
                    invocation_id,
                    function_id,
                    error=wire.error_body("invocation_failed", f"result is not JSON: {exc}"),
                )
            )
        except IIIInvocationError as exc:
            await send(
                wire.invocation_result(
                    invocation_id, function_id, error=wire.error_body(exc.code, exc.message)
                )
            )

    async def _call_handler(
        self, fn: LocalFunction, frame: wire.Frame, execution: Any = None
    ) -> Any:
        loop = self._client_loop.loop
        data = frame.get("data")
        refs = frame.get("_refs")
        if (
            refs != 0
            and isinstance(data, (dict, list))
            and not getattr(fn.handler, "iii_raw_channel_refs", False)
        ):
            # A handler marked ``iii_raw_channel_refs`` (the ASGI bridge) opens refs itself.
            config = self._config
            data = resolve_channel_refs(data, config.address, config.headers, loop, limit=refs)
        metadata = frame.get("metadata")
        invocation_id = frame.get("invocation_id")
        token = enter_invocation(
            build(
                InvocationContext,
                function_id=fn.id,
                invocation_id=invocation_id,
                metadata=metadata,
                traceparent=frame.get("traceparent"),
                baggage=frame.get("baggage"),
                worker_id=self._conn.worker_id,
            )
        )
        early = None
        if (
            fn.is_async
            and invocation_id is not None
            and getattr(fn.handler, "iii_answers_early", False)
        ):
            traceparent = execution.traceparent if execution is not None else None
            early = _early.set(
                functools.partial(self.answer_now, invocation_id, fn.id, traceparent=traceparent)
            )
        try:
            args, kwargs = fn.arguments(data, metadata)
            if fn.is_async:
                return await fn.handler(*args, **kwargs)
            context = contextvars.copy_context()
            call = functools.partial(context.run, fn.handler, *args, **kwargs)
            assert loop is not None
            return await loop.run_in_executor(self._handler_pool(), call)
        finally:
            if early is not None:
                _early.reset(early)
            exit_invocation(token)

    def _handler_pool(self) -> HandlerPool:
        if self._executor is None:
            self._executor = HandlerPool(self._config.options.max_handler_threads)
        return self._executor

    def close(self) -> None:
        """Shut the sync-handler pool down (queued handlers are cancelled)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
