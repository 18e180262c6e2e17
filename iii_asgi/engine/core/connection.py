"""One worker control connection (protocol.md §1): identity, outbound queue, read loop.

The read loop processes inbound frames strictly in order (§1.6); each frame is handed to a
``Dispatch`` callable (the engine core). Outbound frames go through a bounded queue of
``outbound_queue_size`` frames (64, §1.6) drained by one writer task; senders wait when it is full.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from iii.protocol import Frame, ProtocolError, decode, encode

from ..types import Receive, Send
from .logs import RateLimitedLogger, truncate

if TYPE_CHECKING:
    from .session import Session

__all__ = ["Dispatch", "WorkerConnection"]

logger = logging.getLogger("iii_asgi.engine")
_failures = RateLimitedLogger(logger)

#: ``(connection, frame, raw text or bytes)``; awaited for every decoded frame, in order.
Dispatch = Callable[["WorkerConnection", Frame, "str | bytes"], Awaitable[None]]
#: ``(connection, raw, error)``; awaited for a frame that failed to decode.
BadFrame = Callable[["WorkerConnection", "str | bytes", ProtocolError], Awaitable[None]]

_TELEMETRY_PREFIXES = (b"OTLP", b"MTRC", b"LOGS")  # §1.11: binary telemetry frames
_CLOSE = object()


class WorkerConnection:
    """A connected worker, as the registry and router see it.

    ``namespace`` is ``None`` while registrations are buffered (§1.5); ``buffer`` holds them.
    ``inflight`` holds invocation ids this connection executes or initiated (§1.8 step 3).
    ``alive`` turns false when teardown starts; ``torn_down`` is set once it finished.
    ``session`` holds the access rules of a connection on an RBAC or middleware listener
    (protocol.md §8, :class:`~.session.Session`); ``None`` on a trusted listener.
    """

    def __init__(
        self,
        send: Send,
        *,
        queue_size: int = 64,
        ip_address: str | None = None,
        session: Session | None = None,
    ) -> None:
        self.worker_id = str(uuid.uuid4())
        self.reattach_token = str(uuid.uuid4())
        self.namespace: str | None = None
        self.buffer: list[tuple[Frame, str | bytes]] | None = []
        self.grace_handle: asyncio.TimerHandle | None = None
        self.inflight: set[str] = set()
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
        self._queue: asyncio.Queue[object] = asyncio.Queue(queue_size)
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

    async def send(self, frame: Frame | Any) -> None:
        """Queue one frame (a dict); waits while the queue is full; no-op once closed."""
        if self.alive:
            await self._queue.put(encode(frame))

    async def send_text(self, text: str) -> None:
        """Queue an already-encoded JSON frame."""
        if self.alive:
            await self._queue.put(text)

    def close(self) -> None:
        """Ask the writer to send a WebSocket Close after the queued frames; idempotent."""
        try:
            self._queue.put_nowait(_CLOSE)
        except asyncio.QueueFull:
            if self._writer is not None:
                self._writer.cancel()
            asyncio.get_running_loop().create_task(self._force_close())

    async def _force_close(self) -> None:
        with contextlib.suppress(Exception):  # the socket may already be gone
            await self._send({"type": "websocket.close", "code": 1000})

    async def stop_writer(self) -> None:
        """Cancel the writer task (after teardown) and wait for it."""
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer

    async def _write_loop(self) -> None:
        queue = self._queue
        send = self._send
        try:
            while True:
                item = await queue.get()
                if item is _CLOSE:
                    await send({"type": "websocket.close", "code": 1000})
                    return
                await send({"type": "websocket.send", "text": item})
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # socket gone: the read loop sees the disconnect
            logger.debug("writer of %r stopped: %r", self, exc)

    # -- inbound ------------------------------------------------------------------------------

    async def run(self, receive: Receive, dispatch: Dispatch, bad_frame: BadFrame) -> None:
        """Read frames until the socket closes or the connection is evicted (§1.9)."""
        while not self.evicted:
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
