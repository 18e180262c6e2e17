"""The iii client: one worker connection to the engine (protocol.md §1–§3, §5.2, §6).

Two loop models (DESIGN.md "One event loop"):

- ``register_worker()`` from plain sync code: the client owns a background event-loop thread,
  connects, and returns once connected (seeds 001/002).
- ``III(url)`` then ``await client.connect()`` inside a running loop: the client attaches to that
  loop, so handlers run on the caller's loop (seed 004; the ASGI bridge uses this).

Sync methods (``trigger``, ``register_*``) work from any thread; ``trigger`` refuses to run on
the client's own loop thread, where it would deadlock.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import logging
import os
import platform
import threading
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import websockets
from websockets.asyncio.client import ClientConnection

from . import protocol as wire
from ._handlers import LocalFunction, jsonable
from ._standby import Standby
from ._transport import CoalescingClientConnection
from .channels import Channel, ChannelReader, ChannelWriter, StreamChannelRef, resolve_channel_refs
from .context import InvocationContext, enter_invocation, exit_invocation
from .errors import (
    IIIInvocationError,
    RegistrationRejectedError,
    error_from_body,
    timeout_error,
)
from .http import HttpInvocationConfig
from .observability import OtelConfig, init_otel
from .observability._invocation import end_execution, outgoing, start_execution
from .options import (
    MAX_QUEUE_SIZE,
    IIIConnectionState,
    InitOptions,
    ReconnectionConfig,
    resolve_engine_url,
)
from .types import (
    EnqueueResult,
    FunctionInfo,
    RegisterTriggerInput,
    RegisterTriggerTypeInput,
    TriggerActionEnqueue,
    TriggerActionVoid,
    TriggerConfig,
    TriggerHandler,
    TriggerRequest,
    WorkerInfo,
)

__all__ = ["III", "FunctionRef", "Trigger", "TriggerTypeRef", "register_worker"]

logger = logging.getLogger("iii.client")
T = TypeVar("T")

SDK_VERSION = "0.1.0"
CONNECT_WAIT_S = 30.0
#: Envelopes above this are sent as a fragmented text message (protocol.md §1.6).
SINGLE_FRAME_LIMIT = 16 * 1024 * 1024
FRAGMENT_SIZE = 1024 * 1024

ConnectionStateCallback = Callable[[IIIConnectionState], Any]


class FunctionRef:
    """Handle of a registered function: ``id`` and ``unregister()``."""

    def __init__(self, client: III, function_id: str) -> None:
        self.id = function_id
        self._client = client

    def unregister(self) -> None:
        """Withdraw the function (``unregisterfunction``, §2.5). Idempotent."""
        self._client._unregister_function(self.id)

    def __repr__(self) -> str:
        return f"FunctionRef(id={self.id!r})"


class Trigger:
    """Handle of a registered trigger (binding): ``id`` and ``unregister()``."""

    def __init__(self, client: III, trigger_id: str, trigger_type: str) -> None:
        self.id = trigger_id
        self.trigger_type = trigger_type
        self._client = client

    def unregister(self) -> None:
        """Remove the binding (``unregistertrigger``, §2.10). Idempotent."""
        self._client._unregister_trigger(self.id)

    def __repr__(self) -> str:
        return f"Trigger(id={self.id!r}, trigger_type={self.trigger_type!r})"


class TriggerTypeRef:
    """Handle of a trigger type this worker provides."""

    def __init__(self, client: III, type_id: str) -> None:
        self.id = type_id
        self._client = client

    def register_trigger(self, function_id: str, config: Any, metadata: Any = None) -> Trigger:
        """Bind ``function_id`` to a trigger of this type."""
        return self._client.register_trigger(
            {"type": self.id, "function_id": function_id, "config": config, "metadata": metadata}
        )

    def register_function(
        self, function_id: str, handler: Callable[..., Any], *, description: str | None = None
    ) -> FunctionRef:
        """Register a function (a convenience, same as ``client.register_function``)."""
        return self._client.register_function(function_id, handler, description=description)

    def unregister(self) -> None:
        self._client.unregister_trigger_type({"id": self.id})


@dataclass
class _Pending:
    future: asyncio.Future[Any]  # belongs to the caller's loop, which may be another thread's
    function_id: str
    generation: int | None  # connection the frame went out on; None while queued offline

    def settle(self, result: Any = None, error: BaseException | None = None) -> None:
        """Complete the caller's future from any thread."""
        loop = self.future.get_loop()
        try:
            same_thread = asyncio.get_running_loop() is loop
        except RuntimeError:
            same_thread = False
        if same_thread:
            _settle(self.future, result, error)
        elif not loop.is_closed():
            loop.call_soon_threadsafe(_settle, self.future, result, error)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop when it is installed (it comes with ``uvicorn[standard]``), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class _LoopThread:
    """An event loop running forever on its own non-daemon thread (sdk_surface §3.1)."""

    def __init__(self) -> None:
        self.loop = _new_loop()
        self.thread = threading.Thread(target=self._run, name="iii-loop", daemon=False)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        self.loop.close()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        if threading.current_thread() is not self.thread:
            self.thread.join(timeout=10)


class III:
    """A worker's connection to the iii engine.

    >>> client = register_worker("ws://127.0.0.1:49134")
    >>> client.register_function("math::add", lambda d: d["a"] + d["b"])
    >>> client.trigger({"function_id": "math::add", "payload": {"a": 1, "b": 2}})
    3

    ``address`` resolves from the argument, else ``III_URL``, else ``ws://127.0.0.1:49134``.
    """

    def __init__(self, address: str | None = None, options: InitOptions | None = None) -> None:
        self._address = resolve_engine_url(address)
        self._options = options or InitOptions()
        self._name = self._options.resolved_worker_name()
        self._namespace = self._options.resolved_namespace()
        self._headers = self._options.resolved_headers()
        self._reconnection = self._options.reconnection_config or ReconnectionConfig()

        self._functions: dict[str, LocalFunction | HttpInvocationConfig] = {}
        self._function_frames: dict[str, wire.Frame] = {}
        self._triggers: dict[str, wire.Frame] = {}
        self._trigger_types: dict[str, tuple[wire.Frame, TriggerHandler]] = {}
        self._services: dict[str, wire.Frame] = {}
        self._provided: dict[str, TriggerConfig] = {}

        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: _LoopThread | None = None
        self._run_task: asyncio.Task[None] | None = None
        self._connected: asyncio.Event | None = None
        self._ws: ClientConnection | None = None
        self._generation = 0
        self._outbox: deque[str | list[str]] = deque()
        self._outbox_ready: asyncio.Event | None = None
        self._flushing = False
        self._live = False  # the current socket finished its connect sequence
        self._offline: deque[tuple[str | list[str], str | None]] = deque(maxlen=MAX_QUEUE_SIZE)
        self._pending: dict[str, _Pending] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

        self._state: IIIConnectionState = "disconnected"
        self._state_listeners: list[ConnectionStateCallback] = []
        self._worker_id: str | None = None
        self._reattach_token: str | None = None
        self._rejected: RegistrationRejectedError | None = None
        #: ErrorBodies of ``error`` frames the engine sent (e.g. a refused HTTP-invoked function).
        self.engine_errors: list[dict[str, Any]] = []
        #: Registrations the engine refused: ``{"kind": "trigger"|"function", "id",
        #: "function_id", "code", "message"}`` (``triggerregistrationresult`` errors, §2.11;
        #: ``FUNCTION_NAMESPACE_CONFLICT`` rejections, §1.10).
        self.registration_errors: list[dict[str, Any]] = []
        self._closing = False
        self._standby = Standby(self)

    # ------------------------------------------------------------------ lifecycle

    @property
    def worker_id(self) -> str | None:
        """The engine-assigned id of the current connection (``workerregistered``)."""
        return self._worker_id

    @property
    def worker_name(self) -> str:
        return self._name

    @property
    def namespace(self) -> str | None:
        return self._namespace

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop the connection and the async handlers run on, once bound."""
        return self._loop

    def get_address(self) -> str:
        """The resolved engine URL."""
        return self._address

    def get_connection_state(self) -> IIIConnectionState:
        return self._state

    @property
    def standby_functions(self) -> dict[str, str]:
        """``{function id: owner worker id}`` of the functions registered here that another
        live worker owns (``FUNCTION_NAMESPACE_CONFLICT``, protocol.md §2.6). They stay
        registered locally and are claimed again when the owner leaves; see ``iii._standby``."""
        return self._standby.functions()

    @property
    def standby_retry_interval_s(self) -> float:
        """Fallback period (seconds) of standby claims; events normally trigger them sooner."""
        return self._standby.retry_interval_s

    @standby_retry_interval_s.setter
    def standby_retry_interval_s(self, seconds: float) -> None:
        self._standby.retry_interval_s = seconds

    async def connect(self, timeout: float | None = CONNECT_WAIT_S) -> None:
        """Connect on the running loop and wait until registered (seed 004).

        Raises ``ConnectionError`` when no connection could be set up within ``timeout`` seconds
        (the client then stops retrying), :class:`RegistrationRejectedError` when the engine
        refused the worker. Returns at once when already connected.
        """
        loop = asyncio.get_running_loop()
        if self._loop is not None and self._loop is not loop:
            await asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(
                    self._start(timeout, keep_trying=False), self._loop
                )
            )
            return
        await self._start(timeout, keep_trying=False)

    connect_async = connect

    async def _start(self, timeout: float | None, *, keep_trying: bool) -> None:
        self._bind(asyncio.get_running_loop())
        self._init_otel()
        assert self._connected is not None
        if self._rejected is not None:
            raise self._rejected
        if self._run_task is None or self._run_task.done():
            self._closing = False
            self._run_task = asyncio.ensure_future(self._run())
        try:
            await asyncio.wait_for(self._wait_connected(), timeout)
        except asyncio.TimeoutError:
            if keep_trying:
                logger.warning(
                    "iii: not connected to %s after %ss; still retrying in the background",
                    self._address,
                    timeout,
                )
                return
            await self._stop_connection()
            raise ConnectionError(
                f"could not connect to the iii engine at {self._address} within {timeout}s"
            ) from None

    def _init_otel(self) -> None:
        """OTel for this process (sdk_surface.md §3.9): ``InitOptions.otel``, exporting to this
        worker's engine unless the config names another; no-op when already initialised or
        disabled (``OTEL_ENABLED=false``)."""
        config = OtelConfig.coerce(self._options.otel)
        if config.engine_ws_url is None:
            config = replace(
                config,
                engine_ws_url=self._address,
                engine_ws_headers=config.engine_ws_headers or self._headers,
            )
        init_otel(config)

    async def _wait_connected(self) -> None:
        assert self._connected is not None
        while True:
            if self._rejected is not None:
                raise self._rejected
            if self._state == "failed":
                raise ConnectionError(
                    f"could not connect to the iii engine at {self._address}: retries exhausted"
                )
            if self._connected.is_set():
                return
            waiter = asyncio.ensure_future(self._connected.wait())
            run_task = self._run_task
            assert run_task is not None
            await asyncio.wait({waiter, run_task}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if run_task.done() and not self._connected.is_set():
                if self._rejected is not None:
                    raise self._rejected
                raise ConnectionError(f"connection to {self._address} stopped ({self._state})")

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._loop is None:
            self._loop = loop
            self._connected = asyncio.Event()
            self._outbox_ready = asyncio.Event()
        elif self._loop is not loop:
            raise RuntimeError("this III client is bound to another event loop")

    def _start_background_loop(self) -> None:
        if self._loop is not None:
            raise RuntimeError("this III client already has an event loop")
        self._loop_thread = _LoopThread()
        self._bind(self._loop_thread.loop)

    async def shutdown_async(self) -> None:
        """Disconnect and release everything: pending calls fail with code ``SHUTDOWN``,
        running handlers are cancelled, the handler thread pool is shut down."""
        if self._loop is not None and asyncio.get_running_loop() is not self._loop:
            await asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(self.shutdown_async(), self._loop)
            )
            return
        await self._stop_connection()
        self._fail_pending(lambda p: True, "SHUTDOWN", "client shut down")
        tasks = [t for t in self._tasks if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        self._set_state("disconnected")

    def shutdown(self) -> None:
        """Synchronous :meth:`shutdown_async`; also stops the owned loop thread.

        Raises ``RuntimeError`` when called on the client's own loop thread.
        """
        loop = self._loop
        if loop is None:
            return
        self._refuse_loop_thread("shutdown", "shutdown_async")
        if loop.is_running():
            asyncio.run_coroutine_threadsafe(self.shutdown_async(), loop).result(timeout=30)
        if self._loop_thread is not None:
            self._loop_thread.stop()
            self._loop_thread = None

    async def _stop_connection(self) -> None:
        self._closing = True
        task, self._run_task = self._run_task, None
        if self._ws is not None:
            await self._ws.close()
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    # ------------------------------------------------------------------ state

    def on_connection_state_change(self, callback: ConnectionStateCallback) -> Callable[[], None]:
        """Call ``callback(state)`` now and on every state transition; returns an unsubscribe.

        States: ``disconnected``, ``connecting``, ``connected``, ``reconnecting``, ``failed``.
        Callbacks run on the client's loop thread; one that raises is logged and isolated.
        """
        self._state_listeners.append(callback)
        self._notify(callback, self._state)

        def unsubscribe() -> None:
            if callback in self._state_listeners:
                self._state_listeners.remove(callback)

        return unsubscribe

    add_connection_state_listener = on_connection_state_change

    def _set_state(self, state: IIIConnectionState) -> None:
        if state == self._state:
            return
        self._state = state
        for callback in list(self._state_listeners):
            self._notify(callback, state)

    @staticmethod
    def _notify(callback: ConnectionStateCallback, state: IIIConnectionState) -> None:
        try:
            callback(state)
        except Exception:
            logger.exception("connection state listener failed")

    # ------------------------------------------------------------------ connection loop

    async def _run(self) -> None:
        attempt = 0
        first = True
        while not self._closing:
            self._set_state("connecting" if first else "reconnecting")
            try:
                ws = await websockets.connect(
                    self._address,
                    additional_headers=self._headers,
                    max_size=wire.MAX_MESSAGE_SIZE,
                    compression=None,
                    open_timeout=10,
                    create_connection=CoalescingClientConnection,  # one write per loop turn
                )
            except Exception as exc:
                if self._closing:
                    return
                retries = self._reconnection.max_retries
                if retries >= 0 and attempt >= retries:
                    logger.warning("iii: giving up on %s after %d attempts", self._address, attempt)
                    self._set_state("failed")
                    return
                delay = self._reconnection.delay_s(attempt)
                logger.warning(
                    "iii: cannot connect to %s (%s); retrying in %.2fs", self._address, exc, delay
                )
                attempt += 1
                first = False
                await asyncio.sleep(delay)
                continue
            first = False
            self._generation += 1
            generation = self._generation
            self._ws = ws
            writer = asyncio.ensure_future(self._write_loop(ws))
            try:
                self._on_connected()
                attempt = 0
                self._set_state("connected")
                assert self._connected is not None
                self._connected.set()
                await self._read_loop(ws)
            except websockets.ConnectionClosed:
                pass
            except Exception:
                logger.exception("iii: connection to %s failed", self._address)
            finally:
                self._ws = None
                self._live = False
                self._outbox.clear()
                writer.cancel()
                await asyncio.gather(writer, return_exceptions=True)
                if self._connected is not None:
                    self._connected.clear()
                await ws.close()
                self._fail_pending(
                    lambda p, g=generation: p.generation == g,  # type: ignore[misc]
                    "CONNECTION_LOST",
                    f"connection to the engine at {self._address} was lost during the call",
                )
            if self._rejected is not None:
                self._set_state("failed")
                return
            if self._closing:
                return
            self._set_state("reconnecting")
            await asyncio.sleep(self._reconnection.delay_s(0))

    def _on_connected(self) -> None:
        """Queue, in order: reattach, replay, offline queue, worker metadata (§1.4)."""
        self._standby.reset()
        if self._worker_id is not None and self._reattach_token is not None:
            self._outbox.append(
                wire.encode(
                    {
                        "type": "reattach",
                        "previous_worker_id": self._worker_id,
                        "reattach_token": self._reattach_token,
                    }
                )
            )
        for frame, _ in self._trigger_types.values():
            self._outbox.append(wire.encode(frame))
        for frame in self._services.values():
            self._outbox.append(wire.encode(frame))
        for frame in self._function_frames.values():
            self._outbox.append(wire.encode(frame))
        for frame in self._triggers.values():
            self._outbox.append(wire.encode(frame))
        while self._offline:
            text, invocation_id = self._offline.popleft()
            if invocation_id is not None:
                pending = self._pending.get(invocation_id)
                if pending is None:
                    continue  # timed out while queued
                pending.generation = self._generation
            self._outbox.append(text)
        self._outbox.append(
            wire.encode(
                wire.invoke_function(
                    "engine::workers::register", self._worker_metadata(), action={"type": "void"}
                )
            )
        )
        self._live = True
        assert self._outbox_ready is not None
        self._outbox_ready.set()

    def _worker_metadata(self) -> dict[str, Any]:
        telemetry = self._options.telemetry
        data: dict[str, Any] = {
            "runtime": "python",
            "version": SDK_VERSION,
            "name": self._name,
            "os": f"{platform.system()} {platform.release()} ({platform.machine()})",
            "pid": os.getpid(),
            "isolation": os.environ.get("III_ISOLATION") or None,
            "namespace": self._namespace,
            "telemetry": {
                "language": (telemetry.language if telemetry else None)
                or os.environ.get("LANG", "").split(".")[0]
                or None,
                "project_name": telemetry.project_name if telemetry else None,
                "framework": (telemetry.framework if telemetry else None) or "iii-asgi",
            },
            "features": ["large-messages.v1"],
        }
        if self._options.worker_description:
            data["description"] = self._options.worker_description
        return data

    async def _write_loop(self, ws: ClientConnection) -> None:
        """Send what sync callers (registrations, replay) queued; coroutines flush inline."""
        ready = self._outbox_ready
        assert ready is not None
        while True:
            await ready.wait()
            ready.clear()
            await self._flush(ws)

    async def _flush(self, ws: ClientConnection | None = None) -> None:
        """Send the outbox in order. Only one flusher runs at a time; a frame queued while
        another coroutine is flushing is sent by that coroutine."""
        ws = ws or self._ws
        if self._flushing or ws is None:
            return
        self._flushing = True
        outbox = self._outbox
        try:
            while outbox:
                await ws.send(outbox.popleft())
        finally:
            self._flushing = False

    async def _read_loop(self, ws: ClientConnection) -> None:
        async for raw in ws:
            try:
                frame = wire.decode(raw)
            except wire.ProtocolError as exc:
                logger.warning("iii: dropping malformed frame from the engine: %s", exc)
                continue
            if frame["type"] == "invokefunction":
                # Cheap pre-check: a payload holds at most as many refs as its text names an
                # access key (none: no walk at all).
                frame["_refs"] = (
                    raw.count(b"access_key") if isinstance(raw, bytes) else raw.count("access_key")
                )
            try:
                self._dispatch(frame)
            except Exception:
                logger.exception("iii: failed to handle %s frame", frame.get("type"))
            if self._rejected is not None:
                await ws.close()
                return

    def _post(self, frame: Mapping[str, Any], *, invocation_id: str | None = None) -> None:
        """Queue ``frame`` and wake the writer (loop thread only, from sync code)."""
        if self._enqueue(frame, invocation_id) and not self._flushing:
            assert self._outbox_ready is not None
            self._outbox_ready.set()

    async def _send(self, frame: Mapping[str, Any], *, invocation_id: str | None = None) -> None:
        """Queue ``frame`` and flush in this coroutine, saving a hop through the writer."""
        if self._enqueue(frame, invocation_id):
            await self._flush()

    def _enqueue(self, frame: Mapping[str, Any], invocation_id: str | None) -> bool:
        """Encode and queue a frame; ``True`` when it went to the live connection's outbox."""
        return self._enqueue_text(self._encode(frame), frame.get("type"), invocation_id)

    @staticmethod
    def _encode(frame: Mapping[str, Any]) -> str | list[str]:
        """Encode a frame; above 16 MiB as 1 MiB fragments (protocol.md §1.6).

        Raises :class:`IIIInvocationError` ``payload_too_large`` above 64 MiB, ``TypeError``
        when the frame is not JSON-serialisable.
        """
        text = wire.encode(frame)
        if len(text) > wire.MAX_MESSAGE_SIZE:
            raise IIIInvocationError(
                "payload_too_large",
                f"message of {len(text)} bytes exceeds the {wire.MAX_MESSAGE_SIZE} byte limit",
                function_id=frame.get("function_id") or frame.get("id"),
            )
        if len(text) > SINGLE_FRAME_LIMIT:
            return [text[i : i + FRAGMENT_SIZE] for i in range(0, len(text), FRAGMENT_SIZE)]
        return text

    def _enqueue_text(self, item: str | list[str], kind: Any, invocation_id: str | None) -> bool:
        """Queue an encoded frame (loop thread only). Invocations made while disconnected wait
        in the offline queue (max 1000, oldest dropped); other frames are not kept
        (registrations are replayed on connect)."""
        if self._ws is not None and self._live:
            self._outbox.append(item)
            if invocation_id is not None:
                pending = self._pending.get(invocation_id)
                if pending is not None:
                    pending.generation = self._generation
            return True
        if kind == "invokefunction":
            self._offline.append((item, invocation_id))
        return False

    # ------------------------------------------------------------------ inbound

    def _dispatch(self, frame: wire.Frame) -> None:
        kind = frame["type"]
        if kind == "invocationresult":
            self._on_result(frame)
        elif kind == "invokefunction":
            self._spawn(self._on_invoke(frame))
        elif kind == "workerregistered":
            self._worker_id = frame["worker_id"]
            self._reattach_token = frame.get("reattach_token")
        elif kind == "registertrigger":
            self._spawn(self._on_provider_register(frame))
        elif kind == "unregistertrigger":
            self._spawn(self._on_provider_unregister(frame))
        elif kind == "triggerregistrationresult":
            error = frame.get("error")
            if error is not None and not self._standby.trigger_failed(frame):
                body = error if isinstance(error, dict) else {"message": str(error)}
                logger.error(
                    "[iii] Trigger registration failed for '%s' (%s): %s",
                    frame["id"],
                    frame["trigger_type"],
                    body.get("message"),
                )
                self.registration_errors.append(
                    {
                        "kind": "trigger",
                        "id": frame["id"],
                        "function_id": frame.get("function_id"),
                        "code": body.get("code"),
                        "message": body.get("message"),
                    }
                )
        elif kind == "registrationrejected":
            self._on_rejected(frame)
        elif kind == "error":
            self._on_engine_error(frame)
        elif kind == "ping":
            self._post({"type": "pong"})
        elif kind == "pong":
            self._standby.pong()
        else:
            logger.debug("iii: ignoring %s frame", kind)

    def _on_result(self, frame: wire.Frame) -> None:
        pending = self._pending.pop(frame["invocation_id"], None)
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

    def _on_engine_error(self, frame: wire.Frame) -> None:
        """An ``error`` frame: the engine refused something it cannot answer otherwise, e.g.
        an HTTP-invoked function whose URL or auth failed validation (protocol.md §4.1)."""
        error = frame.get("error")
        body = error if isinstance(error, dict) else {}
        subject = f"function {frame['function_id']!r}: " if frame.get("function_id") else ""
        logger.error("iii: engine error: %s%s: %s", subject, body.get("code"), body.get("message"))
        self.engine_errors.append(body)

    def _on_rejected(self, frame: wire.Frame) -> None:
        code = frame["code"]
        if code == "FUNCTION_NAMESPACE_CONFLICT":
            if self._standby.rejected(
                frame.get("function_id", ""), frame.get("owner_worker_id", "")
            ):
                return
            logger.warning(
                "iii: engine refused function %r in namespace %r: owned by worker %s; skipped",
                frame.get("function_id"),
                frame.get("namespace"),
                frame.get("owner_worker_id"),
            )
            self.registration_errors.append(
                {
                    "kind": "function",
                    "id": frame.get("function_id"),
                    "function_id": frame.get("function_id"),
                    "code": code,
                    "message": f"owned by worker {frame.get('owner_worker_id')}",
                }
            )
            return
        self._rejected = RegistrationRejectedError(
            code, frame.get("namespace"), frame.get("worker_name"), frame.get("owner_worker_id")
        )
        logger.error("iii: %s", self._rejected)
        self._set_state("failed")
        for pending in list(self._pending.values()):
            pending.settle(error=self._rejected)
        self._pending.clear()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _on_invoke(self, frame: wire.Frame) -> None:
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
                result = await self._call_handler(fn, frame)
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
        await self._reply(invocation_id, function_id, result, error, traceparent)

    async def _reply(
        self,
        invocation_id: str,
        function_id: str,
        result: Any,
        error: wire.ErrorBody | None,
        traceparent: str | None = None,
    ) -> None:
        try:
            await self._send(
                wire.invocation_result(
                    invocation_id, function_id, result=result, error=error, traceparent=traceparent
                )
            )
        except TypeError as exc:
            await self._send(
                wire.invocation_result(
                    invocation_id,
                    function_id,
                    error=wire.error_body("invocation_failed", f"result is not JSON: {exc}"),
                )
            )
        except IIIInvocationError as exc:
            await self._send(
                wire.invocation_result(
                    invocation_id, function_id, error=wire.error_body(exc.code, exc.message)
                )
            )

    async def _call_handler(self, fn: LocalFunction, frame: wire.Frame) -> Any:
        data = frame.get("data")
        refs = frame.get("_refs")
        if (
            refs != 0
            and isinstance(data, (dict, list))
            and not getattr(fn.handler, "iii_raw_channel_refs", False)
        ):
            # A handler marked ``iii_raw_channel_refs`` (the ASGI bridge) opens refs itself.
            data = resolve_channel_refs(data, self._address, self._headers, self._loop, limit=refs)
        metadata = frame.get("metadata")
        token = enter_invocation(
            InvocationContext(
                function_id=fn.id,
                invocation_id=frame.get("invocation_id"),
                metadata=metadata,
                traceparent=frame.get("traceparent"),
                baggage=frame.get("baggage"),
                worker_id=self._worker_id,
            )
        )
        try:
            args, kwargs = fn.arguments(data, metadata)
            if fn.is_async:
                return await fn.handler(*args, **kwargs)
            context = contextvars.copy_context()
            call = functools.partial(context.run, fn.handler, *args, **kwargs)
            assert self._loop is not None
            return await self._loop.run_in_executor(self._handler_pool(), call)
        finally:
            exit_invocation(token)

    def _handler_pool(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=self._options.max_handler_threads, thread_name_prefix="iii-handler"
            )
        return self._executor

    async def _on_provider_register(self, frame: wire.Frame) -> None:
        entry = self._trigger_types.get(frame["trigger_type"])
        if entry is None:
            return  # not a type we provide: ignored, as the official SDK does
        config = TriggerConfig(
            id=frame["id"],
            function_id=frame["function_id"],
            config=frame.get("config"),
            metadata=frame.get("metadata"),
            namespace=frame.get("namespace"),
        )
        ack: wire.Frame = {
            "type": "triggerregistrationresult",
            "id": frame["id"],
            "trigger_type": frame["trigger_type"],
            "function_id": frame["function_id"],
        }
        try:
            await entry[1].register_trigger(config)
            self._provided[config.id] = config
        except Exception as exc:
            logger.exception("trigger provider %s refused %s", frame["trigger_type"], frame["id"])
            ack["error"] = wire.error_body("trigger_registration_failed", str(exc))
        await self._send(ack)

    async def _on_provider_unregister(self, frame: wire.Frame) -> None:
        trigger_type = frame.get("trigger_type")
        entry = self._trigger_types.get(trigger_type) if trigger_type else None
        if entry is None:
            return
        config = self._provided.pop(frame["id"], None) or TriggerConfig(
            id=frame["id"], function_id=""
        )
        try:
            await entry[1].unregister_trigger(config)
        except Exception:
            logger.exception("trigger provider %s failed to unregister %s", trigger_type, config.id)

    # ------------------------------------------------------------------ thread hopping

    def _on_loop_thread(self) -> bool:
        loop = self._loop
        if loop is None:
            return False
        try:
            return asyncio.get_running_loop() is loop
        except RuntimeError:
            return False

    def _refuse_loop_thread(self, name: str, instead: str) -> None:
        if self._on_loop_thread():
            raise RuntimeError(
                f"Cannot call sync SDK method {name}() from the event loop thread: it would "
                f"deadlock. Use `await client.{instead}(...)` instead."
            )

    def _call_soon(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the client's loop: now when on it, else scheduled there."""
        loop = self._loop
        if loop is None or self._on_loop_thread() or not loop.is_running():
            fn()
        else:
            loop.call_soon_threadsafe(fn)

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
        if not isinstance(function_id, str):
            raise TypeError("function_id must be str")
        if not function_id.strip():
            raise ValueError("function_id must not be empty")
        if function_id in self._functions:
            raise ValueError(f"function {function_id!r} is already registered on this worker")
        frame: wire.Frame = {"type": "registerfunction", "id": function_id}
        entry: LocalFunction | HttpInvocationConfig
        if isinstance(handler_or_invocation, HttpInvocationConfig):
            entry = handler_or_invocation
            frame["invocation"] = entry.to_wire()
        else:
            entry = LocalFunction.from_handler(
                function_id, handler_or_invocation, request_format, response_format
            )
            request_format, response_format = entry.request_format, entry.response_format
        if description is not None:
            frame["description"] = description
        if request_format is not None:
            frame["request_format"] = jsonable(request_format)
        if response_format is not None:
            frame["response_format"] = jsonable(response_format)
        if metadata is not None:
            frame["metadata"] = metadata
        self._functions[function_id] = entry
        self._function_frames[function_id] = frame
        self._call_soon(lambda: self._post(frame))
        return FunctionRef(self, function_id)

    def _unregister_function(self, function_id: str) -> None:
        if self._functions.pop(function_id, None) is None:
            return
        self._function_frames.pop(function_id, None)
        self._call_soon(lambda: self._standby.forget_function(function_id))
        self._call_soon(lambda: self._post({"type": "unregisterfunction", "id": function_id}))

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
        acknowledges only failures (logged).
        """
        if isinstance(trigger, str):
            spec = RegisterTriggerInput(
                type=trigger,
                function_id=function_id or "",
                config=config,
                metadata=metadata,
                **kwargs,
            )
        elif isinstance(trigger, RegisterTriggerInput):
            spec = trigger
        else:
            spec = RegisterTriggerInput.model_validate(dict(trigger))
        if not spec.function_id:
            raise ValueError("register_trigger needs a function_id")
        trigger_id = str(uuid.uuid4())
        frame: wire.Frame = {
            "type": "registertrigger",
            "id": trigger_id,
            "trigger_type": spec.type,
            "function_id": spec.function_id,
            "config": jsonable(spec.config),
        }
        if spec.metadata is not None:
            frame["metadata"] = spec.metadata
        namespace = spec.namespace or self._namespace
        if namespace is not None:
            frame["namespace"] = namespace
        if spec.trigger_namespace is not None:
            frame["trigger_namespace"] = spec.trigger_namespace
        self._triggers[trigger_id] = frame
        self._call_soon(lambda: self._post(frame))
        return Trigger(self, trigger_id, spec.type)

    def _unregister_trigger(self, trigger_id: str) -> None:
        frame = self._triggers.pop(trigger_id, None)
        if frame is None:
            return
        self._call_soon(lambda: self._standby.forget_trigger(trigger_id))
        message = {
            "type": "unregistertrigger",
            "id": trigger_id,
            "trigger_type": frame["trigger_type"],
        }
        self._call_soon(lambda: self._post(message))

    def register_trigger_type(
        self,
        trigger_type: RegisterTriggerTypeInput | Mapping[str, Any] | str,
        handler: TriggerHandler | str,
        legacy_handler: TriggerHandler | None = None,
    ) -> TriggerTypeRef:
        """Provide a trigger type (``registertriggertype``, protocol.md §2.7, §5.2).

        ``register_trigger_type({"id": ..., "description": ...}, handler)``; seed 004's
        ``register_trigger_type(id, description, handler)`` works too. The handler's
        ``register_trigger`` / ``unregister_trigger`` are called for each binding.
        """
        if isinstance(trigger_type, str):
            if not isinstance(handler, str) or legacy_handler is None:
                raise TypeError("use register_trigger_type(id, description, handler)")
            spec = RegisterTriggerTypeInput(id=trigger_type, description=handler)
            provider = legacy_handler
        else:
            spec = (
                trigger_type
                if isinstance(trigger_type, RegisterTriggerTypeInput)
                else RegisterTriggerTypeInput.model_validate(dict(trigger_type))
            )
            if isinstance(handler, str):
                raise TypeError("handler must be a TriggerHandler")
            provider = handler
        if not isinstance(provider, TriggerHandler):
            raise TypeError("handler must be a TriggerHandler instance")
        frame: wire.Frame = {
            "type": "registertriggertype",
            "id": spec.id,
            "description": spec.description,
        }
        for key in ("trigger_request_format", "call_request_format"):
            value = getattr(spec, key)
            if value is not None:
                frame[key] = jsonable(value)
        if spec.namespace is not None:
            frame["namespace"] = spec.namespace
        self._trigger_types[spec.id] = (frame, provider)
        self._call_soon(lambda: self._post(frame))
        return TriggerTypeRef(self, spec.id)

    def unregister_trigger_type(
        self, trigger_type: RegisterTriggerTypeInput | Mapping[str, Any] | str
    ) -> None:
        """Stop providing a trigger type (``unregistertriggertype``, protocol.md §2.8)."""
        if isinstance(trigger_type, str):
            type_id, namespace = trigger_type, None
        elif isinstance(trigger_type, RegisterTriggerTypeInput):
            type_id, namespace = trigger_type.id, trigger_type.namespace
        else:
            type_id, namespace = trigger_type["id"], trigger_type.get("namespace")
        if self._trigger_types.pop(type_id, None) is None:
            return
        frame: wire.Frame = {"type": "unregistertriggertype", "id": type_id}
        if namespace is not None:
            frame["namespace"] = namespace
        self._call_soon(lambda: self._post(frame))

    def register_service(
        self, id: str, description: str | None = None, parent_service_id: str | None = None
    ) -> None:
        """Group functions under a service (``registerservice``, protocol.md §2.14; seed 004)."""
        frame: wire.Frame = {"type": "registerservice", "id": id, "name": id}
        if description is not None:
            frame["description"] = description
        if parent_service_id is not None:
            frame["parent_service_id"] = parent_service_id
        self._services[id] = frame
        self._call_soon(lambda: self._post(frame))

    # ------------------------------------------------------------------ invocation

    def trigger(self, request: TriggerRequest | Mapping[str, Any]) -> Any:
        """Invoke a function and block the calling thread until it answers.

        Returns the function's result; ``None`` for a Void action; an :class:`EnqueueResult`
        for an Enqueue action. Raises :class:`IIIInvocationError` (``IIITimeoutError`` after
        the timeout), and ``RuntimeError`` when called on the client's loop thread.
        """
        loop = self._require_loop()
        self._refuse_loop_thread("trigger", "trigger_async")
        return asyncio.run_coroutine_threadsafe(self._invoke(_request(request)), loop).result()

    async def trigger_async(self, request: TriggerRequest | Mapping[str, Any]) -> Any:
        """Invoke a function from any event loop; same results and errors as :meth:`trigger`."""
        self._require_loop()
        return await self._invoke(_request(request))

    def _require_loop(self) -> asyncio.AbstractEventLoop:
        if self._rejected is not None:
            raise self._rejected
        if self._loop is None:
            raise RuntimeError(
                "the client is not connected: use register_worker() or `await client.connect()`"
            )
        return self._loop

    async def _invoke(self, request: TriggerRequest) -> Any:
        """Run one call on the caller's loop; only the encoded frame crosses to the client's
        loop (when they differ), and the result comes back by ``call_soon_threadsafe``."""
        if self._rejected is not None:
            raise self._rejected
        if self._closing and self._run_task is None:
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
                namespace = self._namespace
        action = request.action
        traceparent, baggage = outgoing()  # protocol.md §3.6
        if isinstance(action, TriggerActionVoid):
            frame = wire.invoke_function(
                function_id,
                request.payload,
                action={"type": "void"},
                metadata=request.metadata,
                namespace=namespace,
                traceparent=traceparent,
                baggage=baggage,
            )
            await self._deliver(self._encode(frame), None)
            return None
        invocation_id = str(uuid.uuid4())
        frame = wire.invoke_function(
            function_id,
            request.payload,
            invocation_id=invocation_id,
            action=(
                {"type": "enqueue", "queue": action.queue}
                if isinstance(action, TriggerActionEnqueue)
                else None
            ),
            metadata=request.metadata,
            namespace=namespace,
            traceparent=traceparent,
            baggage=baggage,
        )
        text = self._encode(frame)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending[invocation_id] = _Pending(future, function_id, None)
        timeout_ms = request.timeout_ms or self._options.invocation_timeout_ms
        timer = loop.call_later(
            timeout_ms / 1000, self._expire, invocation_id, function_id, timeout_ms
        )
        try:
            await self._deliver(text, invocation_id)
            result = await future
        finally:
            timer.cancel()
            self._pending.pop(invocation_id, None)
        if isinstance(action, TriggerActionEnqueue) and isinstance(result, dict):
            return EnqueueResult.model_validate(result)
        return result

    async def _deliver(self, text: str | list[str], invocation_id: str | None) -> None:
        """Hand an encoded invocation to the connection, from the caller's loop."""
        if self._on_loop_thread():
            if self._enqueue_text(text, "invokefunction", invocation_id):
                await self._flush()
            return
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._post_text, text, invocation_id)

    def _post_text(self, text: str | list[str], invocation_id: str | None) -> None:
        if self._enqueue_text(text, "invokefunction", invocation_id) and not self._flushing:
            assert self._outbox_ready is not None
            self._outbox_ready.set()

    def _expire(self, invocation_id: str, function_id: str, timeout_ms: int) -> None:
        pending = self._pending.pop(invocation_id, None)
        if pending is not None:
            pending.settle(error=timeout_error(function_id, timeout_ms, invocation_id))

    def _fail_pending(self, which: Callable[[_Pending], bool], code: str, message: str) -> None:
        for invocation_id, pending in list(self._pending.items()):
            if which(pending):
                self._pending.pop(invocation_id, None)
                pending.settle(
                    error=IIIInvocationError(
                        code, message, function_id=pending.function_id, invocation_id=invocation_id
                    )
                )

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
        loop = self._require_loop()
        if self._on_loop_thread():
            self._spawn(self._invoke(request))
        else:
            asyncio.run_coroutine_threadsafe(self._invoke(request), loop)

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
        return Channel(
            writer=ChannelWriter(self._address, writer_ref, self._headers, loop=self._loop),
            reader=ChannelReader(self._address, reader_ref, self._headers, loop=self._loop),
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


_REQUEST_KEYS = frozenset(TriggerRequest.model_fields)


def _request(request: TriggerRequest | Mapping[str, Any]) -> TriggerRequest:
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
    assert client._loop is not None
    future = asyncio.run_coroutine_threadsafe(
        client._start(CONNECT_WAIT_S, keep_trying=True), client._loop
    )
    try:
        future.result()
    except BaseException:
        client.shutdown()
        raise
    return client
