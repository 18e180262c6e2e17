"""The worker's websocket to the engine: connect, reconnect with backoff, send and receive
(protocol.md §1).

What is sent goes through one outbox in order; coroutines flush it inline, sync callers wake the
writer task. On every (re)connect the connection queues, in order: ``reattach``, the client's
registrations (its ``replay``), the invocations queued while offline, ``engine::workers::register``
(§1.4). Received frames go to the client's ``dispatch``; while the ``gate`` (the handlers'
backlog) is full, the connection is not read.

The connection is a WebSocket, or an in-memory link to an engine of this process
(:mod:`._memory_transport`): then frames travel as dicts, and :attr:`Connection.pack` copies
instead of encoding.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import deque
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, cast

import websockets

from . import _memory_transport as memory
from . import protocol as wire
from ._config import ClientConfig
from ._loop import ClientLoop
from ._pending import PendingCalls
from ._slots import HandlerSlots
from ._transport import CoalescingClientConnection
from .errors import IIIInvocationError, RegistrationRejectedError
from .options import MAX_QUEUE_SIZE, ConnectionStateCallback, IIIConnectionState

__all__ = [
    "FRAGMENT_SIZE",
    "SINGLE_FRAME_LIMIT",
    "Connection",
    "ConnectionStateCallback",
    "Outgoing",
    "encode",
]

logger = logging.getLogger("iii.client")

#: Envelopes above this are sent as a fragmented text message (protocol.md §1.6).
SINGLE_FRAME_LIMIT = 16 * 1024 * 1024
FRAGMENT_SIZE = 1024 * 1024

#: A frame ready to send: JSON text (or its fragments) on a WebSocket, a packed dict in memory.
Outgoing = str | list[str] | wire.Frame
#: The connection under the client: a WebSocket or an in-memory link.
Wire = CoalescingClientConnection | memory.MemoryClientConnection


def encode(frame: Mapping[str, Any]) -> str | list[str]:
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


class Connection:
    """One client's connection to the engine, across reconnects.

    ``dispatch(frame)`` handles each received frame (on the loop); ``replay()`` returns the
    registration frames to send on each connect. ``pending`` is the client's calls in flight:
    calls that went out on a connection that drops fail with ``CONNECTION_LOST``.
    """

    def __init__(
        self,
        config: ClientConfig,
        client_loop: ClientLoop,
        pending: PendingCalls,
        *,
        dispatch: Callable[[wire.Frame], None],
        replay: Callable[[], list[wire.Frame]],
    ) -> None:
        self._config = config
        self._client_loop = client_loop
        self._pending = pending
        self._dispatch = dispatch
        self._replay = replay

        self.run_task: asyncio.Task[None] | None = None
        self.connected: asyncio.Event | None = None
        self.closing = False
        self.rejected: RegistrationRejectedError | None = None
        self.live = False  # the current socket finished its connect sequence
        self.generation = 0
        self.worker_id: str | None = None
        self.reattach_token: str | None = None
        self.state: IIIConnectionState = "disconnected"
        self._state_listeners: list[ConnectionStateCallback] = []
        self._ws: Wire | None = None
        #: Turns a frame into what the current connection sends (:data:`Outgoing`).
        self.pack: Callable[[Mapping[str, Any]], Outgoing] = encode
        self._outbox: deque[Outgoing] = deque()
        self._outbox_ready: asyncio.Event | None = None
        self._flushing = False
        self._offline: deque[tuple[Outgoing, str | None]] = deque(maxlen=MAX_QUEUE_SIZE)
        #: While full, the read loop waits (back-pressure to the engine): the handlers' backlog.
        self.gate: HandlerSlots | None = None

    # ------------------------------------------------------------------ lifecycle

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Bind the client to ``loop`` (``RuntimeError`` when bound to another one)."""
        self._client_loop.bind(loop)
        if self.connected is None:
            self.connected = asyncio.Event()
            self._outbox_ready = asyncio.Event()

    async def start(self, timeout: float | None, *, keep_trying: bool) -> None:
        """Start connecting (unless running) and wait up to ``timeout`` seconds for it.

        Raises :class:`RegistrationRejectedError` when the engine refused the worker; on
        timeout logs a warning when ``keep_trying``, else stops and raises ``ConnectionError``.
        """
        assert self.connected is not None
        if self.rejected is not None:
            raise self.rejected
        if self.run_task is None or self.run_task.done():
            self.closing = False
            self.run_task = asyncio.ensure_future(self._run())
        try:
            await asyncio.wait_for(self._wait_connected(), timeout)
        except asyncio.TimeoutError:
            address = self._config.address
            if keep_trying:
                logger.warning(
                    "iii: not connected to %s after %ss; still retrying in the background",
                    address,
                    timeout,
                )
                return
            await self.stop()
            raise ConnectionError(
                f"could not connect to the iii engine at {address} within {timeout}s"
            ) from None

    async def _wait_connected(self) -> None:
        assert self.connected is not None
        while True:
            if self.rejected is not None:
                raise self.rejected
            if self.state == "failed":
                raise ConnectionError(
                    f"could not connect to the iii engine at {self._config.address}: "
                    "retries exhausted"
                )
            if self.connected.is_set():
                return
            waiter = asyncio.ensure_future(self.connected.wait())
            run_task = self.run_task
            assert run_task is not None
            await asyncio.wait({waiter, run_task}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if run_task.done() and not self.connected.is_set():
                if self.rejected is not None:
                    raise self.rejected
                raise ConnectionError(
                    f"connection to {self._config.address} stopped ({self.state})"
                )

    async def stop(self) -> None:
        """Close the socket and stop reconnecting."""
        self.closing = True
        task, self.run_task = self.run_task, None
        if self._ws is not None:
            await self._ws.close()
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def reject(self, error: RegistrationRejectedError) -> None:
        """The engine refused the worker: no reconnect; the state becomes ``failed``."""
        self.rejected = error
        self.set_state("failed")

    # ------------------------------------------------------------------ state

    def add_state_listener(self, callback: ConnectionStateCallback) -> Callable[[], None]:
        """Call ``callback(state)`` now and on every transition; returns an unsubscribe."""
        self._state_listeners.append(callback)
        self._notify(callback, self.state)

        def unsubscribe() -> None:
            if callback in self._state_listeners:
                self._state_listeners.remove(callback)

        return unsubscribe

    def set_state(self, state: IIIConnectionState) -> None:
        if state == self.state:
            return
        self.state = state
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
        address = self._config.address
        reconnection = self._config.reconnection
        attempt = 0
        first = True
        while not self.closing:
            self.set_state("connecting" if first else "reconnecting")
            try:
                ws: Wire | None = memory.connect(
                    address, self._config.headers, self._config.transport
                )
                ws = ws or cast(
                    CoalescingClientConnection,
                    await websockets.connect(
                        address,
                        additional_headers=self._config.headers,
                        max_size=wire.MAX_MESSAGE_SIZE,
                        compression=None,
                        open_timeout=10,
                        create_connection=CoalescingClientConnection,  # one write per loop turn
                    ),
                )
            except Exception as exc:
                if self.closing:
                    return
                retries = reconnection.max_retries
                if retries >= 0 and attempt >= retries:
                    logger.warning("iii: giving up on %s after %d attempts", address, attempt)
                    self.set_state("failed")
                    return
                delay = reconnection.delay_s(attempt)
                logger.warning(
                    "iii: cannot connect to %s (%s); retrying in %.2fs", address, exc, delay
                )
                attempt += 1
                first = False
                await asyncio.sleep(delay)
                continue
            first = False
            self.pack = memory.pack if isinstance(ws, memory.MemoryClientConnection) else encode
            self.generation += 1
            generation = self.generation
            self._ws = ws
            writer = asyncio.ensure_future(self._write_loop(ws))
            try:
                self._on_connected()
                attempt = 0
                self.set_state("connected")
                assert self.connected is not None
                self.connected.set()
                await self._read_loop(ws)
            except websockets.ConnectionClosed:
                pass
            except Exception:
                logger.exception("iii: connection to %s failed", address)
            finally:
                self._ws = None
                self.live = False
                self._outbox.clear()
                writer.cancel()
                await asyncio.gather(writer, return_exceptions=True)
                if self.connected is not None:
                    self.connected.clear()
                await ws.close()
                if not self.closing:  # a shutdown fails them with SHUTDOWN
                    self._pending.fail(
                        lambda p, g=generation: p.generation == g,  # type: ignore[misc]
                        "CONNECTION_LOST",
                        f"connection to the engine at {address} was lost during the call",
                    )
            if self.rejected is not None:
                self.set_state("failed")
                return
            if self.closing:
                return
            self.set_state("reconnecting")
            await asyncio.sleep(reconnection.delay_s(0))

    def _on_connected(self) -> None:
        """Queue, in order: reattach, replay, offline queue, worker metadata (§1.4)."""
        outbox = self._outbox
        replay = self._replay()
        if self.worker_id is not None and self.reattach_token is not None:
            outbox.append(
                self.pack(
                    {
                        "type": "reattach",
                        "previous_worker_id": self.worker_id,
                        "reattach_token": self.reattach_token,
                    }
                )
            )
        for frame in replay:
            outbox.append(self.pack(frame))
        while self._offline:
            text, invocation_id = self._offline.popleft()
            if invocation_id is not None:
                pending = self._pending.get(invocation_id)
                if pending is None:
                    continue  # timed out while queued
                pending.generation = self.generation
            outbox.append(text)
        outbox.append(
            self.pack(
                wire.invoke_function(
                    "engine::workers::register",
                    self._config.worker_metadata(),
                    action={"type": "void"},
                )
            )
        )
        self.live = True
        assert self._outbox_ready is not None
        self._outbox_ready.set()

    async def _write_loop(self, ws: Wire) -> None:
        """Send what sync callers (registrations, replay) queued; coroutines flush inline."""
        ready = self._outbox_ready
        assert ready is not None
        while True:
            await ready.wait()
            ready.clear()
            await self.flush(ws)

    async def flush(self, ws: Wire | None = None) -> None:
        """Send the outbox in order. Only one flusher runs at a time; a frame queued while
        another coroutine is flushing is sent by that coroutine."""
        ws = ws or self._ws
        if self._flushing or ws is None:
            return
        self._flushing = True
        outbox = self._outbox
        try:
            while outbox:
                item = outbox.popleft()
                if not ws.send_now(item):
                    await ws.send(item)
        finally:
            self._flushing = False

    def _kick(self) -> None:
        """Send the outbox now while the connection takes frames without waiting
        (``send_now``, loop thread only); wake the writer task for the rest."""
        ws, outbox = self._ws, self._outbox
        if ws is not None:
            send_now = ws.send_now
            while outbox and send_now(outbox[0]):
                outbox.popleft()
        if outbox:
            assert self._outbox_ready is not None
            self._outbox_ready.set()

    async def _read_loop(self, ws: Wire) -> None:
        take_inline = ws.take_inline  # frames handed over while this loop waits, in its context
        take_inline(partial(self._take_inline, contextvars.copy_context()))
        try:
            async for raw in ws:
                self._take(raw)
                if self.rejected is not None:
                    await ws.close()
                    return
                gate = self.gate
                if gate is not None and len(gate.waiting) >= gate.pause_at:  # gate.full(), inline
                    await gate.wait()  # not read meanwhile: the engine holds the rest
        finally:
            take_inline(None)

    def _take(self, raw: str | bytes | bytearray | wire.Frame) -> None:
        """Decode one received frame and dispatch it. A frame in memory comes from the embedded
        engine of this process, built by :mod:`iii.protocol`'s constructors from values the
        engine checked on receipt: it is taken as it is (the text of a socket is checked)."""
        try:
            frame = raw if type(raw) is dict else wire.decode(cast(str, raw))
        except wire.ProtocolError as exc:
            logger.warning("iii: dropping malformed frame from the engine: %s", exc)
            return
        if frame["type"] == "invokefunction" and not isinstance(raw, dict):
            # Cheap pre-check: a payload holds at most as many refs as its text names an
            # access key (none: no walk at all; in memory no text: walked).
            frame["_refs"] = (
                raw.count("access_key") if isinstance(raw, str) else raw.count(b"access_key")
            )
        try:
            self._dispatch(frame)
        except Exception:
            logger.exception("iii: failed to handle %s frame", frame.get("type"))

    def _take_inline(
        self, context: contextvars.Context, raw: bytes | bytearray | wire.Frame
    ) -> bool:
        """A frame the connection hands over while :meth:`_read_loop` waits for one: handled
        as that loop would (in ``context``, a copy of the loop's), without its task hop;
        ``False`` (left to the loop) while the handlers' backlog is full."""
        gate = self.gate
        if gate is not None and len(gate.waiting) >= gate.pause_at:
            return False
        context.run(self._take, raw)
        ws = self._ws
        if self.rejected is not None and ws is not None:
            self._client_loop.spawn(ws.close())  # the waiting read loop then ends
        return True

    # ------------------------------------------------------------------ outbound

    def post(self, frame: Mapping[str, Any]) -> None:
        """Queue ``frame`` and send it (loop thread only, from sync code)."""
        if self.enqueue_text(self.pack(frame), frame.get("type"), None) and not self._flushing:
            self._kick()

    def post_owned(self, frame: Mapping[str, Any]) -> None:
        """:meth:`post` of a frame built for this send alone, of JSON values only, which the
        caller does not touch again: the in-process transport takes it as it is (no copy)."""
        item: Outgoing = (
            cast(dict[str, Any], frame) if self.pack is memory.pack else self.pack(frame)
        )
        if self.enqueue_text(item, frame.get("type"), None) and not self._flushing:
            self._kick()

    async def send(self, frame: Mapping[str, Any]) -> None:
        """Queue ``frame`` and flush in this coroutine, saving a hop through the writer."""
        if self.enqueue_text(self.pack(frame), frame.get("type"), None):
            await self.flush()

    def post_text(self, text: Outgoing, invocation_id: str | None) -> None:
        """Queue a packed invocation and send it (loop thread only)."""
        if self.enqueue_text(text, "invokefunction", invocation_id) and not self._flushing:
            self._kick()

    def enqueue_text(self, item: Outgoing, kind: Any, invocation_id: str | None) -> bool:
        """Queue a packed frame (loop thread only); ``True`` when it went to the live
        connection's outbox. Invocations made while disconnected wait in the offline queue
        (max 1000, oldest dropped); other frames are not kept (registrations are replayed on
        connect)."""
        if self._ws is not None and self.live:
            self._outbox.append(item)
            if invocation_id is not None:
                pending = self._pending.get(invocation_id)
                if pending is not None:
                    pending.generation = self.generation
            return True
        if kind == "invokefunction":
            self._offline.append((item, invocation_id))
        return False
