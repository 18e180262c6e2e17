"""One worker control connection (protocol.md §1): identity, outbound queue, read loop.

The read loop processes inbound frames strictly in order (§1.6); each frame is handed to a
``Dispatch`` callable (the engine core). Outbound frames go through a queue drained by one
writer task, bounded in frames (``EngineConfig.outbound_queue_size``) and bytes
(``outbound_queue_bytes``). Nothing that queues a frame ever waits, so one connection's read loop
never waits for another connection's socket (issue 13; the real engine's senders wait, §1.6):

* an invocation for this worker is refused once its queue is full (:meth:`offer`; the caller
  gets ``WORKER_BACKPRESSURE``), or when the engine's frame budget cannot hold it
  (``FRAME_BUDGET_EXCEEDED``);
* any other frame (a result, an ack) is queued up to twice those limits; past them the peer is
  not reading at all, and the connection is dropped (Close 1008) as a slow consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from iii.protocol import Frame, ProtocolError, decode, encode

from ..types import Receive, Send
from .budget import FrameAccount
from .logs import RateLimitedLogger, truncate

if TYPE_CHECKING:
    from .session import Session

__all__ = [
    "BACKPRESSURE",
    "BUDGET_EXCEEDED",
    "FAIR_BATCH",
    "Dispatch",
    "QueuedInvocation",
    "WorkerConnection",
]

logger = logging.getLogger("iii_asgi.engine")
_failures = RateLimitedLogger(logger)

#: ``(connection, frame, raw text or bytes)``; awaited for every decoded frame, in order.
Dispatch = Callable[["WorkerConnection", Frame, "str | bytes"], Awaitable[None]]
#: ``(connection, raw, error)``; awaited for a frame that failed to decode.
BadFrame = Callable[["WorkerConnection", "str | bytes", ProtocolError], Awaitable[None]]

_TELEMETRY_PREFIXES = (b"OTLP", b"MTRC", b"LOGS")  # §1.11: binary telemetry frames
_CLOSE = object()


class QueuedInvocation(Protocol):
    """An invocation in an outbound queue: ``text`` is its encoded ``invokefunction`` until
    the writer takes it (then ``None``); one ``stopped`` before that is never sent. ``frame``:
    the same frame as a dict, for a connection that :attr:`~WorkerConnection.takes_frames`;
    ``owned``: its ``data`` may be handed over without a copy."""

    text: str | None
    frame: Frame | None
    stopped: bool
    owned: bool


#: Frames one connection's read loop handles before it lets the others run (when they keep
#: arriving faster than it handles them: a read is up to 256 KiB, hundreds of small frames;
#: 128 is past what one read of 64 pipelined calls holds, so those keep their batching).
FAIR_BATCH = 128

#: Error codes of an invocation refused by :meth:`WorkerConnection.offer`.
BACKPRESSURE = "WORKER_BACKPRESSURE"
BUDGET_EXCEEDED = "FRAME_BUDGET_EXCEEDED"


class WorkerConnection:
    """A connected worker, as the registry and router see it.

    ``namespace`` is ``None`` while registrations are buffered (§1.5); ``buffer`` holds them.
    ``inflight`` holds invocation ids this connection executes or initiated (§1.8 step 3);
    ``executing`` counts the invocations routed to it that wait for its result.
    ``alive`` turns false when teardown starts; ``torn_down`` is set once it finished.
    ``queue_size`` / ``queue_bytes`` bound the outbound queue (``EngineConfig.
    outbound_queue_size`` / ``outbound_queue_bytes``); ``account`` is the socket's share of the
    engine's frame budget (``None``: outbound bytes are bounded by ``queue_bytes`` only).
    ``session`` holds the access rules of a connection on an RBAC or middleware listener
    (protocol.md §8, :class:`~.session.Session`); ``None`` on a trusted listener.
    ``send_now(text) -> bool``: writes a text message at once when the socket can take it
    (``scope["extensions"]["iii.send_now"]`` of our WebSocket protocol); a frame queued while
    the writer task is idle and the queue empty goes that way, without waking the writer.
    """

    #: Invocations are offered as dicts (``QueuedInvocation.frame``), not encoded text: an
    #: in-memory link (:class:`~.memory.MemoryWorkerConnection`); a socket takes text.
    takes_frames = False

    def __init__(
        self,
        send: Send,
        *,
        queue_size: int,
        queue_bytes: int,
        account: FrameAccount | None = None,
        ip_address: str | None = None,
        session: Session | None = None,
        send_now: Callable[[str], bool] | None = None,
    ) -> None:
        self.worker_id = str(uuid.uuid4())
        self.reattach_token = str(uuid.uuid4())
        self.namespace: str | None = None
        self.buffer: list[tuple[Frame, str | bytes]] | None = []
        self.grace_handle: asyncio.TimerHandle | None = None
        self.inflight: set[str] = set()
        self.executing = 0
        #: Invocations it says it can hold at once (``engine::workers::register``
        #: ``max_inflight_invocations``, capped by the engine's); ``None``: the engine's.
        self.max_inflight: int | None = None
        self.functions: set[tuple[str, str]] = set()
        self.triggers: set[str] = set()
        self.trigger_types: set[tuple[str, str]] = set()
        self.name: str | None = None
        self.info: dict[str, Any] = {}
        self.registered = False
        self.connected_at_ms = int(time.time() * 1000)
        self.ip_address = ip_address
        self.session = session
        self.alive = True
        self.evicted = False
        self.torn_down = asyncio.Event()
        self.teardown_started = False
        self._send = send
        self._send_now = send_now
        self.queue_size = max(1, queue_size)
        self.queue_bytes = queue_bytes
        self.account = account
        self._out: deque[Any] = deque()  # encoded frames, then maybe _CLOSE
        self._out_bytes = 0
        self._ready: asyncio.Future[None] | None = None  # the idle writer waits on it
        self._dropped = False
        self._writer: asyncio.Task[None] | None = None
        #: Receives binary telemetry frames sent on this socket (§1.11); ``None`` drops them.
        self.on_telemetry: Callable[[bytes], Any] | None = None

    def __repr__(self) -> str:
        name = None if self.name is None else truncate(self.name, 100)
        namespace = None if self.namespace is None else truncate(self.namespace, 100)
        return f"<WorkerConnection {self.worker_id} name={name!r} ns={namespace!r}>"

    @property
    def display_name(self) -> str:
        """The reported worker name, or the worker id when none was reported."""
        return self.name or self.worker_id

    # -- outbound -----------------------------------------------------------------------------

    def start_writer(self) -> None:
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())

    @property
    def queued(self) -> tuple[int, int]:
        """``(frames, bytes)`` waiting in the outbound queue (bytes: ``len()`` of the JSON)."""
        return len(self._out), self._out_bytes

    def offer(self, invocation: QueuedInvocation) -> tuple[str, str] | None:
        """Queue an invocation (its encoded ``text``) for this worker unless it cannot take it
        now: ``None`` when queued, else ``(code, message)``: ``WORKER_BACKPRESSURE`` when its
        queue holds ``queue_size`` frames or ``queue_bytes`` bytes (an empty queue takes any
        one frame), ``FRAME_BUDGET_EXCEEDED`` when the engine's frame budget cannot hold it.
        Never waits. An invocation ``stopped`` while still queued is dropped unsent."""
        text = invocation.text
        assert text is not None
        size = len(text)
        out = self._out
        if len(out) >= self.queue_size or (out and self._out_bytes + size > self.queue_bytes):
            frames, queued = self.queued
            return BACKPRESSURE, (
                f"worker {self.display_name} is not taking invocations: {frames} frames "
                f"({queued} bytes) already queued to its socket (outbound_queue_size "
                f"{self.queue_size}, outbound_queue_bytes {self.queue_bytes})"
            )
        account = self.account
        if account is None:
            pass
        elif account.held + size <= account.allowance and not account.closed:
            account.held += size  # Share.charge's fast path, inline: this runs per call
        elif not account.charge(size):
            return BUDGET_EXCEEDED, (
                f"the engine's frame budget ({account.budget.limit} bytes) cannot hold a "
                f"{size}-byte invocation for worker {self.display_name} now"
            )
        send_now = self._send_now
        if self._ready is not None and not out and send_now is not None and send_now(text):
            invocation.text = None  # the writer was idle: written at once, in order
            if account is not None:
                account.release(size)
            return None
        self._push(invocation, size)
        return None

    def post(self, text: str) -> None:
        """Queue an encoded frame that is not an invocation (a result, an ack). Never waits;
        past twice the queue limits the peer is not reading and is dropped (Close 1008)."""
        if not self.alive or self._dropped:
            return
        size = len(text)
        out = self._out
        if out and (
            len(out) >= 2 * self.queue_size or self._out_bytes + size > 2 * self.queue_bytes
        ):
            self._drop_slow_consumer()
            return
        send_now = self._send_now
        if self._ready is not None and not out and send_now is not None and send_now(text):
            return  # the writer was idle: written at once, in order
        account = self.account
        if account is not None:  # the frame exists already; refusing it frees nothing
            held = account.held + size
            if held <= account.allowance:
                account.held = held  # Share.force's fast path, inline: this runs per frame
            else:
                account.force(size)
        self._push(text, size)

    async def send(self, frame: Frame | Any) -> None:
        """Queue one frame (a dict) with :meth:`post`; never waits; no-op once closed."""
        if self.alive:
            self.post(encode(frame))

    async def send_text(self, text: str) -> None:
        """Queue an already-encoded JSON frame with :meth:`post`."""
        self.post(text)

    def _push(self, item: Any, size: int) -> None:
        self._out.append(item)
        self._out_bytes += size
        ready = self._ready
        if ready is not None:
            self._ready = None
            if not ready.done():
                ready.set_result(None)

    def _forget_queued(self) -> None:
        out = self._out
        if self.account is not None and self._out_bytes:
            self.account.release(self._out_bytes)
        out.clear()
        self._out_bytes = 0

    def _drop_slow_consumer(self) -> None:
        self._dropped = True
        frames, queued = self.queued
        logger.warning(
            "dropping %r: it does not read its socket (%d frames, %d bytes queued)",
            self,
            frames,
            queued,
        )
        self._forget_queued()
        abort = self.account.abort if self.account is not None else None
        if abort is not None:
            abort(1008, "outbound queue full: the worker does not read its socket")
        else:  # no way to reach the transport: stop at the next frame, close when possible
            self.evicted = True
            if self._writer is not None:
                self._writer.cancel()
            asyncio.get_running_loop().create_task(self._force_close())

    def close(self) -> None:
        """Ask the writer to send a WebSocket Close after the queued frames; idempotent."""
        self._push(_CLOSE, 0)

    async def _force_close(self) -> None:
        with contextlib.suppress(Exception):  # the socket may already be gone
            await self._send({"type": "websocket.close", "code": 1008})

    async def stop_writer(self) -> None:
        """Cancel the writer task (after teardown), wait for it, and forget queued frames."""
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        self._forget_queued()

    async def _write_loop(self) -> None:
        out = self._out
        send = self._send
        loop = asyncio.get_running_loop()
        try:
            while True:
                if not out:
                    self._ready = ready = loop.create_future()
                    await ready
                    continue
                item = out.popleft()
                if type(item) is str:
                    text = item
                elif item is _CLOSE:
                    await send({"type": "websocket.close", "code": 1000})
                    return
                else:  # a QueuedInvocation
                    text, item.text = item.text, None
                    if item.stopped:  # stopped before it went out: nothing to tell anyone
                        self._out_bytes -= len(text)
                        if self.account is not None:
                            self.account.release(len(text))
                        continue
                size = len(text)
                try:
                    await send({"type": "websocket.send", "text": text})
                finally:
                    self._out_bytes -= size
                    account = self.account
                    if account is not None:
                        if account.borrowed or account.closed:
                            account.release(size)
                        else:
                            account.held -= size  # Share.release's fast path, inline
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # socket gone: the read loop sees the disconnect
            logger.debug("writer of %r stopped: %r", self, exc)

    # -- inbound ------------------------------------------------------------------------------

    async def run(self, receive: Receive, dispatch: Dispatch, bad_frame: BadFrame) -> None:
        """Read frames until the socket closes or the connection is evicted (§1.9). Every
        :data:`FAIR_BATCH` frames the loop yields, so a socket whose frames arrived in bulk
        (one read holds hundreds) does not keep the other connections waiting meanwhile."""
        handled = 0
        while not self.evicted:
            handled += 1
            if handled == FAIR_BATCH:
                handled = 0
                await asyncio.sleep(0)
            message = await receive()
            kind = message["type"]
            if kind == "websocket.receive":
                raw: str | bytes | None = message.get("text")
                if raw is None:
                    raw = message.get("bytes") or b""
                    if raw[:4] in _TELEMETRY_PREFIXES:
                        if self.on_telemetry is not None:
                            self.on_telemetry(raw)
                        continue
                if not raw or raw.isspace():
                    continue
                try:
                    frame = decode(raw)
                except ProtocolError as exc:
                    await bad_frame(self, raw, exc)
                    continue
                try:
                    await dispatch(self, frame, raw)
                except Exception:
                    _failures.error(
                        "frame_failed",
                        "error handling %s frame from %r",
                        truncate(frame.get("type"), 100),
                        self,
                        exc_info=True,
                    )
            elif kind == "websocket.disconnect":
                return
