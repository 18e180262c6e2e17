"""Invocation routing (protocol.md §3): sync, void and enqueue calls, results, in-flight sets.

Worker-to-worker calls reuse the caller's ``invocation_id`` end to end (§3.3) and the executor's
``invocationresult`` text is relayed to the caller unchanged when the ids agree. Engine-initiated
calls (:meth:`Invoker.call`, §3.4) use a fresh UUID and carry no ``_caller_worker_id``.

Bounds (issue 13, docs/engine.md "Limits"): an executor takes at most ``max_inflight`` calls at
once and only while its socket queue has room (:meth:`Invoker.admit`); a call refused answers at
once with ``WORKER_BACKPRESSURE`` (or ``FRAME_BUDGET_EXCEEDED``). A call has a deadline when its
frame carries ``timeout_ms`` (our SDK sends its timeout) or ``invocation_timeout_ms`` is set:
past it the caller gets ``TIMEOUT``, the pending entry is dropped, and the executor is told with
an ``invocationresult`` for the id it runs, error ``invocation_stopped`` (:meth:`Invoker.stop`):
our SDK cancels the handler; an SDK that does not know the id (the official one) ignores it
(§2.13). Engine-initiated calls whose waiter is cancelled are stopped the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from iii.protocol import Frame, encode, error_body, invocation_result, invoke_function

from .connection import BACKPRESSURE, WorkerConnection
from .errors import InvocationError
from .registry import DEFAULT_NAMESPACE, CallContext, FunctionEntry, Registry
from .tracing import EngineTracer, traceparent_of, with_function_id

__all__ = ["ENQUEUE_PROVIDER", "NO_QUEUE_PROVIDER", "Invocation", "Invoker"]

logger = logging.getLogger("iii_asgi.engine")

#: The function ``TriggerAction.Enqueue`` routes through (builtins.md §7.1).
ENQUEUE_PROVIDER = "engine::queue::enqueue"
NO_QUEUE_PROVIDER = (
    "No queue provider is installed. `TriggerAction::Enqueue` routes through the "
    "`engine::queue::enqueue` provider, which no worker or built-in provides. "
    "Add it with `iii worker add queue`."
)
_STOPPED = error_body("invocation_stopped", "Invocation stopped")
#: How often calls past their deadline are looked for, in seconds.
EXPIRY_INTERVAL_S = 0.5


#: Stands for a raw JSON body in an encoded frame (:meth:`Invoker.send_call`).
_RAW_BODY = f'"iii-raw-body:{uuid.uuid4()}"'


@dataclass(eq=False, slots=True)
class Invocation:
    """A call waiting for an executor's result. ``id`` is the id the executor sees;
    ``reply_id`` the caller's id (``None`` for void); ``future`` is set for internal calls."""

    id: str
    function_id: str
    executor: WorkerConnection
    caller: WorkerConnection | None = None
    reply_id: str | None = None
    future: asyncio.Future[Frame] | None = None
    span: Any = None  # the engine's ``invoke`` span, when tracing is on
    deadline: float = 0.0  # time.monotonic() past which the call times out; 0: none
    timeout_ms: int = 0
    text: str | None = None  # the encoded invokefunction while it waits in the executor's queue
    frame: Frame | None = None  # the same as a dict, for an executor that takes frames
    stopped: bool = False  # stopped while queued: the writer drops it
    #: ``frame["data"]`` was built for this call alone and is not kept by the engine: an
    #: executor that takes frames may take it as it is (no private copy).
    owned: bool = False


def _end(span: Any, error: Any = None) -> None:
    if span is not None:
        EngineTracer.end(span, error)


def _pack(executor: WorkerConnection, inv: Invocation, frame: Mapping[str, Any]) -> None:
    """Attach the ``invokefunction`` frame to ``inv`` as ``executor`` takes it: a dict, or
    encoded text (a socket)."""
    if executor.takes_frames:
        inv.frame = cast(Frame, frame)  # a TypedDict: a dict at run time
    else:
        inv.text = encode(frame)


class Invoker:
    """Routes ``invokefunction`` frames and relays ``invocationresult`` frames.

    ``telemetry``: with its tracer on, a traced call (one with ``traceparent``) gets an
    ``invoke <function_id>`` span, and the executor sees that span as its parent (§3.6).
    ``max_inflight``: calls one executor may have waiting for its results;
    ``timeout_ms``: deadline of worker calls whose frame names none (``None``: no deadline).
    """

    def __init__(
        self,
        registry: Registry,
        telemetry: EngineTracer | None = None,
        *,
        max_inflight: int,
        timeout_ms: int | None = None,
    ) -> None:
        self.registry = registry
        self.max_inflight = max(1, max_inflight)
        self.timeout_ms = timeout_ms
        self.telemetry = telemetry
        #: The engine tracer, or ``None`` when tracing is off (the hot path checks only this).
        self.tracer = telemetry.tracer if telemetry is not None else None
        self.pending: dict[str, Invocation] = {}
        #: Invocations since start (each counted once: at its result, or when an in-process
        #: function is called) and those that ended in an error; the console's rates.
        self.invocations = 0
        self.errors = 0
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- worker-initiated calls (§3.2, §3.3) ---------------------------------------------------

    async def handle_invoke(self, conn: WorkerConnection, frame: Frame) -> None:
        """Handle a W→E ``invokefunction``; replies only to sync calls (§3.2)."""
        function_id: str = frame["function_id"]
        action = frame.get("action")
        reply_id: str | None = frame.get("invocation_id")
        if action is not None and action["type"] == "void":
            reply_id = None
        namespace: str = frame.get("namespace", DEFAULT_NAMESPACE)
        if not namespace.strip():
            if reply_id is not None:
                await self._reply_error(
                    conn, reply_id, function_id, "INVALID_NAMESPACE", "namespace must not be blank"
                )
            return
        if conn.session is not None and await conn.session.intercept(conn, frame):
            return  # §8.3 / §8.4: refused, or handed to the listener's middleware
        if action is not None and action["type"] == "enqueue":
            # off the read loop, so enqueues of one connection share a storage commit; tasks
            # start in frame order and store their message before their first suspension
            task = asyncio.get_running_loop().create_task(
                self._enqueue(conn, frame, action["queue"], namespace, reply_id)
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        data = frame.get("data")
        if type(data) is dict:
            data["_caller_worker_id"] = conn.worker_id
        entry = self.registry.functions.get((namespace, function_id))
        if entry is None and namespace != DEFAULT_NAMESPACE:
            entry = self.builtin(function_id)
        if entry is None:
            if reply_id is not None:
                code, message = self.missing(function_id, namespace)
                await self._reply_error(conn, reply_id, function_id, code, message)
            return
        owner = entry.owner
        traceparent: str | None = frame.get("traceparent")
        span = None
        if traceparent is not None and self.tracer is not None:
            assert self.telemetry is not None
            span = self.telemetry.start_invoke(function_id, traceparent)
        if owner is None or entry.in_process:  # built-in or HTTP-invoked (§4)
            await self._run_builtin(conn, entry, reply_id, data, frame.get("metadata"), span)
            return
        inv_id = reply_id
        if inv_id is None or inv_id in self.pending:
            inv_id = str(uuid.uuid4())
        inv = Invocation(inv_id, function_id, owner, conn, reply_id, span=span)
        timeout_ms = frame.get("timeout_ms") or self.timeout_ms
        if type(timeout_ms) is int and timeout_ms > 0:
            inv.deadline = time.monotonic() + timeout_ms / 1000
            inv.timeout_ms = timeout_ms
        baggage = frame.get("baggage")
        if traceparent is not None:  # §3.6: the context goes on, baggage names the target
            traceparent = traceparent if span is None else traceparent_of(span)
            baggage = with_function_id(baggage, function_id)
        _pack(
            owner,
            inv,
            invoke_function(
                entry.local_id,  # §8.6: without the executor's registration prefix
                data,
                invocation_id=inv_id,
                metadata=frame.get("metadata"),
                traceparent=traceparent,
                baggage=baggage,
            ),
        )
        refused = self.admit(owner, inv)
        if refused is not None:
            _end(span, error_body(*refused))
            if reply_id is not None:
                await self._reply_error(conn, reply_id, function_id, *refused)
            return
        conn.inflight.add(inv_id)

    def admit(self, executor: WorkerConnection, inv: Invocation) -> tuple[str, str] | None:
        """Queue ``inv`` (its encoded ``invokefunction`` in ``inv.text``) to ``executor`` and
        record it as pending, unless the executor cannot take it now: then nothing is recorded
        and ``(code, message)`` says why: ``WORKER_BACKPRESSURE`` (as many calls waiting for it
        as ``max_inflight`` or its own advertised limit allow, or its socket queue full),
        ``FRAME_BUDGET_EXCEEDED``, or ``invocation_stopped`` (it is disconnecting). Never
        waits."""
        if not executor.alive:
            return "invocation_stopped", "Invocation stopped"
        limit = executor.max_inflight or self.max_inflight
        if executor.executing >= limit:
            return BACKPRESSURE, (
                f"worker {executor.display_name} already has {executor.executing} invocations "
                f"in flight (its limit: {limit})"
            )
        # Recorded first: an in-memory executor may answer during offer() itself (its SDK's
        # immediate WORKER_BACKPRESSURE), and that result must find its call pending.
        self.pending[inv.id] = inv
        executor.inflight.add(inv.id)
        executor.executing += 1
        refused = executor.offer(inv)
        if refused is not None:
            del self.pending[inv.id]
            executor.inflight.discard(inv.id)
            executor.executing -= 1
            return refused
        return None

    async def _enqueue(
        self,
        conn: WorkerConnection,
        frame: Frame,
        queue: str,
        namespace: str,
        reply_id: str | None,
    ) -> None:
        """``TriggerAction.Enqueue`` from a worker: :meth:`enqueue`, then answer
        ``{messageReceiptId}`` or ``enqueue_error``."""
        function_id: str = frame["function_id"]
        try:
            receipt = await self.enqueue(
                function_id,
                frame.get("data"),
                queue,
                namespace=namespace,
                traceparent=frame.get("traceparent"),
                baggage=frame.get("baggage"),
            )
        except InvocationError as exc:
            if reply_id is not None:
                await self._reply_error(conn, reply_id, function_id, exc.code, exc.message)
            return
        except Exception as exc:
            logger.exception("enqueue of %s to %s failed", function_id, queue)
            if reply_id is not None:
                await self._reply_error(conn, reply_id, function_id, "enqueue_error", str(exc))
            return
        if reply_id is not None:
            await conn.send(
                invocation_result(reply_id, function_id, result={"messageReceiptId": receipt})
            )

    async def enqueue(
        self,
        function_id: str,
        data: Any,
        queue: str,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        traceparent: str | None = None,
        baggage: str | None = None,
    ) -> str:
        """``TriggerAction.Enqueue`` (builtins.md §7.1): hand the call to ``engine::queue::
        enqueue`` with a fresh ``messageReceiptId`` and return it. The payload gets no
        ``_caller_worker_id``. Raises :class:`InvocationError` ``enqueue_error`` with message
        ``"<code>: <message>"``."""
        receipt = str(uuid.uuid4())
        request: dict[str, Any] = {
            "queue": queue,
            "function_id": function_id,
            "data": data,
            "messageReceiptId": receipt,
            "traceparent": traceparent,
            "baggage": baggage,
        }
        if namespace != DEFAULT_NAMESPACE:
            request["namespace"] = namespace
        try:
            await self.call(ENQUEUE_PROVIDER, request)
        except InvocationError as exc:
            if exc.code == "function_not_found":
                message = f"{NO_QUEUE_PROVIDER} (underlying: {exc.message})"
            else:
                message = f"{exc.code}: {exc.message}"
            raise InvocationError("enqueue_error", message) from None
        return receipt

    async def _run_builtin(
        self,
        conn: WorkerConnection,
        entry: FunctionEntry,
        reply_id: str | None,
        data: Any,
        metadata: Any,
        span: Any = None,
    ) -> None:
        context = CallContext(conn, reply_id, metadata)
        if entry.inline:
            await self._builtin_call(conn, entry, context, data, span)
        else:
            task = asyncio.get_running_loop().create_task(
                self._builtin_call(conn, entry, context, data, span)
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _builtin_call(
        self,
        conn: WorkerConnection,
        entry: FunctionEntry,
        context: CallContext,
        data: Any,
        span: Any = None,
    ) -> None:
        assert entry.handler is not None
        reply_id = context.invocation_id
        self.invocations += 1
        try:
            result = await entry.handler(context, data)
        except InvocationError as exc:
            self.errors += 1
            _end(span, exc)
            if reply_id is not None:
                await self._reply_error(conn, reply_id, entry.function_id, exc.code, exc.message)
            else:
                logger.info("%s (void) failed: %s: %s", entry.function_id, exc.code, exc.message)
            return
        except Exception as exc:
            self.errors += 1
            _end(span, exc)
            logger.exception("built-in %s failed", entry.function_id)
            if reply_id is not None:
                await self._reply_error(
                    conn, reply_id, entry.function_id, "invocation_error", str(exc)
                )
            return
        except asyncio.CancelledError as exc:
            _end(span, exc)
            raise
        _end(span)
        if reply_id is not None:
            await conn.send(invocation_result(reply_id, entry.function_id, result=result))

    async def _reply_error(
        self, conn: WorkerConnection, reply_id: str, function_id: str, code: str, message: str
    ) -> None:
        body = error_body(code, message)
        await conn.send(invocation_result(reply_id, function_id, error=body))

    def builtin(self, function_id: str) -> FunctionEntry | None:
        """The engine's own function ``function_id`` in ``default`` (``state::set``...), which a
        worker with a namespace reaches without naming ``default``: its SDK sends the worker's
        namespace (builtins.md §1.1 recommends this fallback; the standalone workers get the same
        effect by registering in the project's namespace). ``None`` if there is none; a worker's
        function in ``default`` never answers for another namespace."""
        entry = self.registry.functions.get((DEFAULT_NAMESPACE, function_id))
        if entry is None or entry.owner is not None or entry.handler is None:
            return None
        return entry

    def missing(self, function_id: str, namespace: str) -> tuple[str, str]:
        """Error code and message for a call to an unregistered function: the failure of a
        rejected HTTP-invoked registration (§4.1), else ``function_not_found`` (§3.1)."""
        failed = self.registry.failed_functions.get((namespace, function_id))
        if failed is not None:
            return failed.code, failed.message
        return "function_not_found", self.not_found_message(function_id, namespace)

    def not_found_message(self, function_id: str, namespace: str) -> str:
        """The §3.1 ``function_not_found`` message, naming the namespaces that do have the id."""
        message = f"Function {function_id} not found in namespace {namespace}."
        elsewhere = self.registry.function_namespaces.get(function_id)
        if elsewhere:
            message += f" It is registered in namespace(s): {', '.join(sorted(elsewhere))}."
        return message

    # -- results (§2.13) -----------------------------------------------------------------------

    def complete(self, frame: Frame) -> bool:
        """Complete a pending invocation whose result goes to no caller connection (an
        engine-initiated call, a void call) or is for an unknown id (ignored): ``True``. A
        result a caller waits for is left to :meth:`handle_result`: ``False``. Never waits."""
        inv = self.pending.get(frame["invocation_id"])
        if inv is None:
            logger.debug("result for unknown invocation %s ignored", frame["invocation_id"])
            return True
        if inv.future is None and inv.caller is not None and inv.reply_id is not None:
            return False
        del self.pending[inv.id]
        self._finish(inv, frame)
        if inv.future is not None:
            if not inv.future.done():
                inv.future.set_result(frame)
        elif inv.caller is not None:
            inv.caller.inflight.discard(inv.id)  # void: result swallowed (§3.2)
        return True

    async def handle_result(self, frame: Frame, raw: str | bytes) -> None:
        """Complete a pending invocation; accepted from any connection, unknown ids ignored."""
        if self.complete(frame):
            return
        inv = self.pending.pop(frame["invocation_id"])
        self._finish(inv, frame)
        caller = inv.caller
        assert caller is not None
        caller.inflight.discard(inv.id)
        if inv.reply_id == inv.id and isinstance(raw, str):
            caller.post(raw)
        else:
            frame["invocation_id"] = inv.reply_id
            await caller.send(frame)

    def _finish(self, inv: Invocation, frame: Frame) -> None:
        executor = inv.executor
        executor.inflight.discard(inv.id)
        executor.executing -= 1
        self.invocations += 1
        error = frame.get("error")
        if error is not None:
            self.errors += 1
        _end(inv.span, error)

    # -- engine-initiated calls (§3.4) ---------------------------------------------------------

    async def call(
        self,
        function_id: str,
        data: Any,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        metadata: Any = None,
        traceparent: str | None = None,
        baggage: str | None = None,
    ) -> Any:
        """Call a function from inside the engine and return its result.

        Fresh UUID, ``metadata`` passed as the invocation metadata, no ``_caller_worker_id``
        (§3.4); ``traceparent``/``baggage`` (W3C) are forwarded to a worker when given (a queued
        job carries its enqueuer's). No timeout (§3.5): a caller that stops waiting (its task
        is cancelled) stops the call at the executor (:meth:`stop`). Raises
        :class:`InvocationError` (``function_not_found``, ``invocation_stopped``,
        ``WORKER_BACKPRESSURE`` / ``FRAME_BUDGET_EXCEEDED`` when the executor cannot take it,
        or the executor's error code).
        """
        entry = self.registry.functions.get((namespace, function_id))
        if entry is None:
            failed = self.registry.failed_functions.get((namespace, function_id))
            if failed is not None:
                raise InvocationError(failed.code, failed.message)
            raise InvocationError(
                "function_not_found", f"Function {function_id} not found in namespace {namespace}"
            )
        inv_id = str(uuid.uuid4())
        if entry.in_process or entry.owner is None:
            assert entry.handler is not None
            self.invocations += 1
            try:
                return await entry.handler(CallContext(None, inv_id, metadata), data)
            except Exception:
                self.errors += 1
                raise
        future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        refused = self.send_call(entry, inv_id, data, future, metadata, traceparent, baggage)
        if refused is not None:
            raise InvocationError(*refused)
        try:
            result = await future
        except asyncio.CancelledError:
            self.stop(inv_id, "the engine stopped waiting for the result")
            raise
        error = result.get("error")
        if error is not None:
            raise InvocationError(str(error.get("code")), str(error.get("message")))
        return result.get("result")

    def send_call(
        self,
        entry: FunctionEntry,
        inv_id: str,
        data: Any,
        future: asyncio.Future[Frame],
        metadata: Any = None,
        traceparent: str | None = None,
        baggage: str | None = None,
        *,
        raw_body: str | None = None,
        owned: bool = False,
    ) -> tuple[str, str] | None:
        """Send an engine-initiated call (§3.4) of a worker's function to its ``owner`` (which
        must be set), under the id the owner registered (``local_id``, §8.6); ``future`` gets
        its ``invocationresult``. ``None`` when sent, else why not (see :meth:`admit`).
        ``raw_body``: JSON text of ``data["body"]`` as a client sent it (already validated),
        spliced into the frame instead of encoding the parsed value again (a 16 MiB body took
        ~80 ms). ``owned``: ``data`` is plain JSON values built for this call alone, which the
        caller does not touch again (the HTTP trigger's request): an in-process executor takes
        it without a copy (:attr:`Invocation.owned`)."""
        owner = entry.owner
        assert owner is not None, "send_call needs a worker's function"
        inv = Invocation(inv_id, entry.function_id, owner, future=future, owned=owned)
        if raw_body is not None and not owner.takes_frames:
            data = {**data, "body": _RAW_BODY[1:-1]}
        _pack(
            owner,
            inv,
            invoke_function(
                entry.local_id,
                data,
                invocation_id=inv_id,
                metadata=metadata,
                traceparent=traceparent,
                baggage=baggage,
            ),
        )
        if raw_body is not None and inv.text is not None:
            text = inv.text
            at = text.rfind(_RAW_BODY)  # the body comes after every client-controlled value
            inv.text = f"{text[:at]}{raw_body}{text[at + len(_RAW_BODY) :]}"
        return self.admit(owner, inv)

    # -- teardown (§1.8 step 3) ----------------------------------------------------------------

    async def stop_inflight(self, conn: WorkerConnection) -> None:
        """Halt every invocation ``conn`` executes (callers get ``invocation_stopped``) and drop
        those it initiated (late results are ignored)."""
        ids, conn.inflight = conn.inflight, set()
        for inv_id in ids:
            inv = self.pending.pop(inv_id, None)
            if inv is None:
                continue
            _end(inv.span, _STOPPED)
            inv.executor.executing -= 1
            if inv.executor is not conn:  # conn was the caller
                inv.executor.inflight.discard(inv_id)
                continue
            if inv.future is not None:
                if not inv.future.done():
                    inv.future.set_result(
                        {"type": "invocationresult", "invocation_id": inv_id, "error": _STOPPED}
                    )
                continue
            caller = inv.caller
            if caller is not None and caller is not conn:
                caller.inflight.discard(inv_id)
                if inv.reply_id is not None:
                    await caller.send(
                        invocation_result(inv.reply_id, inv.function_id, error=_STOPPED)
                    )

    # -- deadlines and stops (issue 13) --------------------------------------------------------

    def stop(self, inv_id: str, reason: str | None = None) -> bool:
        """Forget a pending call nobody waits for any more; with a ``reason``, tell its executor
        with an ``invocationresult`` error ``invocation_stopped`` for the id it runs (our SDK
        cancels the handler; others ignore it). False when the call is not pending."""
        inv = self.pending.pop(inv_id, None)
        if inv is None:
            return False
        self._forget(inv)
        _end(inv.span, _STOPPED)
        if reason is not None:
            self._notify_executor(inv, reason)
        return True

    def expire(self, now: float | None = None) -> int:
        """Time out every call past its deadline: the caller gets ``TIMEOUT`` ("invocation
        timed out after N ms", as the SDK's own), the executor is told (:meth:`stop`). Returns
        how many."""
        now = time.monotonic() if now is None else now
        late = [inv for inv in self.pending.values() if 0 < inv.deadline <= now]
        for inv in late:
            if self.pending.pop(inv.id, None) is not inv:
                continue
            self._forget(inv)
            message = f"invocation timed out after {inv.timeout_ms}ms"
            _end(inv.span, error_body("TIMEOUT", message))
            caller = inv.caller
            if caller is not None and inv.reply_id is not None:
                caller.post(
                    encode(
                        invocation_result(
                            inv.reply_id, inv.function_id, error=error_body("TIMEOUT", message)
                        )
                    )
                )
                if caller is inv.executor and inv.reply_id == inv.id and inv.text is None:
                    continue  # that result reaches the executor under its own id already
            self._notify_executor(inv, f"the call timed out after {inv.timeout_ms}ms")
        return len(late)

    async def expire_forever(self, interval_s: float = EXPIRY_INTERVAL_S) -> None:
        """Run :meth:`expire` every ``interval_s`` seconds (deadlines are kept to about that)."""
        while True:
            await asyncio.sleep(interval_s)
            self.expire()

    def _forget(self, inv: Invocation) -> None:
        executor = inv.executor
        executor.inflight.discard(inv.id)
        executor.executing -= 1
        if inv.caller is not None:
            inv.caller.inflight.discard(inv.id)

    def _notify_executor(self, inv: Invocation, reason: str) -> None:
        if inv.text is not None:  # still in the executor's queue: it is dropped unsent
            inv.stopped = True
            return
        body = error_body("invocation_stopped", f"Invocation stopped: {reason}")
        inv.executor.post(encode(invocation_result(inv.id, inv.function_id, error=body)))

    async def cancel_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
