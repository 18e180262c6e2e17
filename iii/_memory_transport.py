"""The in-process transport: a worker and an engine of one process without a socket.

An engine started in this process (``iii_asgi.engine.Engine``, ``iii-asgi run``) registers its
worker URL here (:func:`serve`). A client connecting to that URL (``_connection.py``) then gets
a :class:`MemoryClientConnection` instead of a WebSocket: the same frames and the same protocol
(registration, routing, channels, errors, disconnect cleanup), passed as already-decoded dicts
through a :class:`Link`: two bounded :class:`Pipe` s, one per direction. No JSON text, no
framing, no syscalls. Each side hands over a private copy (:func:`iii.protocol.copy_frame`: what
the JSON round trip would give, so neither side ever sees the other's dicts) and checks what it
receives (:func:`iii.protocol.check`). Channels (``/ws/channels/{id}``) and telemetry
(``/otel``) still use sockets.

Which transport a client uses (``InitOptions.transport``, else ``$III_TRANSPORT``):

- ``auto`` (the default): in memory when the engine serving the URL runs in this process on the
  loop the client connects from (``iii-asgi run``: the bridged app and the engine share one
  loop); a WebSocket otherwise.
- ``memory``: in memory whenever the engine serving the URL runs in this process, on any loop
  (e.g. an ``EngineThread`` and a ``register_worker()`` client); a WebSocket for other URLs.
- ``websocket``: always a WebSocket.

Differences from a socket, by nature: no 64 MiB message limit and no fragments (a frame is never
text), and the engine's side reports no peer address (``ip_address`` ``None``).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Literal

from . import protocol as wire

__all__ = [
    "TRANSPORTS",
    "Link",
    "MemoryClientConnection",
    "Pipe",
    "Transport",
    "connect",
    "normalise_url",
    "pack",
    "resolve_transport",
    "serve",
]

Transport = Literal["auto", "memory", "websocket"]
TRANSPORTS: tuple[Transport, ...] = ("auto", "memory", "websocket")

#: What a frame becomes on the way out (the socket's is ``encode``): a private deep copy.
pack = wire.copy_frame

_OPEN, _DRAINING, _CLOSED = 0, 1, 2


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _wake_any(waiter: asyncio.Future[None]) -> None:
    """Complete ``waiter`` from any thread."""
    loop = waiter.get_loop()
    if _running_loop() is loop:
        if not waiter.done():
            waiter.set_result(None)
    elif not loop.is_closed():
        loop.call_soon_threadsafe(_wake, waiter)


class Pipe:
    """One direction of a :class:`Link`: a FIFO of frames holding at most ``maxsize``, read by
    one coroutine and written from the same loop or from other threads' loops.

    :meth:`put` waits while the pipe is full (back-pressure, as a socket's send does);
    :meth:`get` returns ``None`` once the pipe is closed and drained. :meth:`close_after` ends
    it after the frames already in it (a WebSocket Close after the queued frames);
    :meth:`close` drops them (the peer is gone).

    ``inline``: the reader's handler for a frame put while it waits on an empty pipe, called by
    a writer on the reader's loop instead of queueing the frame and waking the reader (one task
    hop less, same order); it returns ``False`` when it cannot take the frame now (then the
    frame is queued). A frame put while ``inline`` runs is queued.
    """

    __slots__ = (
        "_inlining",
        "_items",
        "_lock",
        "_reader",
        "_state",
        "_writers",
        "inline",
        "maxsize",
    )

    def __init__(self, maxsize: int) -> None:
        self.maxsize = max(1, maxsize)
        self._items: deque[wire.Frame] = deque()
        self._lock = threading.Lock()
        self._reader: asyncio.Future[None] | None = None
        self._writers: deque[asyncio.Future[None]] = deque()
        self._state = _OPEN
        self.inline: Callable[[wire.Frame], bool] | None = None
        self._inlining = False

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        """No frame is accepted any more (:meth:`close` or :meth:`close_after` was called)."""
        return self._state != _OPEN

    def _take_inline(self, frame: wire.Frame) -> bool:
        """Hand ``frame`` to :attr:`inline` when the reader waits on an empty pipe on this
        thread's loop; ``False`` when it did not take it."""
        inline, reader = self.inline, self._reader
        if (
            inline is None
            or reader is None
            or self._inlining
            or self._items
            or self._state != _OPEN
            or reader.get_loop() is not _running_loop()
        ):
            return False
        self._inlining = True
        try:
            return inline(frame)
        finally:
            self._inlining = False

    async def put(self, frame: wire.Frame) -> bool:
        """Append ``frame``, waiting while the pipe is full; ``False`` (dropped) once closed."""
        if self._take_inline(frame):
            return True
        while True:
            with self._lock:
                if self._state != _OPEN:
                    return False
                if len(self._items) < self.maxsize:
                    self._items.append(frame)
                    reader, self._reader = self._reader, None
                    break
                waiter = asyncio.get_running_loop().create_future()
                self._writers.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                with self._lock:
                    if waiter in self._writers:
                        self._writers.remove(waiter)
                        successor = None
                    else:  # woken already: pass the free slot on
                        successor = self._writers.popleft() if self._writers else None
                if successor is not None:
                    _wake_any(successor)
                raise
        if reader is not None:
            _wake_any(reader)
        return True

    def put_nowait(self, frame: wire.Frame) -> bool:
        """Append ``frame`` unless the pipe is full (``False``); dropped once closed."""
        if self._take_inline(frame):
            return True
        with self._lock:
            if self._state != _OPEN:
                return True
            if len(self._items) >= self.maxsize:
                return False
            self._items.append(frame)
            reader, self._reader = self._reader, None
        if reader is not None:
            _wake_any(reader)
        return True

    async def get(self) -> wire.Frame | None:
        """The next frame, waiting for one; ``None`` once closed and drained."""
        while True:
            with self._lock:
                if self._items and self._state != _CLOSED:
                    frame = self._items.popleft()
                    writer = self._writers.popleft() if self._writers else None
                    break
                if self._state != _OPEN:
                    return None
                self._reader = reader = asyncio.get_running_loop().create_future()
            await reader
        if writer is not None:
            _wake_any(writer)
        return frame

    def close_after(self) -> None:
        """Accept nothing more; the reader gets what is in the pipe, then ``None``."""
        self._end(_DRAINING)

    def close(self) -> None:
        """Accept nothing more and drop what is in the pipe; the reader gets ``None``."""
        self._end(_CLOSED)

    def _end(self, state: int) -> None:
        with self._lock:
            self._state = max(self._state, state)
            if self._state == _CLOSED:
                self._items.clear()
            waiters = list(self._writers)
            self._writers.clear()
            reader, self._reader = self._reader, None
        for waiter in waiters:
            _wake_any(waiter)
        if reader is not None:
            _wake_any(reader)


@dataclass(eq=False)
class Link:
    """One in-memory worker connection: ``to_engine`` and ``to_worker`` pipes, and the
    ``headers`` the worker would have sent on the WebSocket upgrade."""

    to_engine: Pipe
    to_worker: Pipe
    headers: dict[str, str]

    def close(self) -> None:
        """Drop both directions (either side's teardown of last resort)."""
        self.to_engine.close()
        self.to_worker.close()


class MemoryClientConnection:
    """The worker's end of a :class:`Link`, shaped like the parts of a websockets
    ``ClientConnection`` the client uses: ``send``, ``async for frame in ...``, ``close``."""

    def __init__(self, link: Link) -> None:
        self.link = link

    async def send(self, item: wire.Frame | str | list[str]) -> None:
        """Send a packed frame; text (queued while another transport was in use) is decoded.
        Dropped once the link is closed, like a frame written to a closed socket."""
        if isinstance(item, list):
            item = "".join(item)
        await self.link.to_engine.put(item if isinstance(item, dict) else wire.decode(item))

    def take_inline(self, handler: Callable[[wire.Frame], bool] | None) -> None:
        """Have the engine's frames handed to ``handler`` while the reader waits (see
        :attr:`Pipe.inline`); ``None`` stops it."""
        self.link.to_worker.inline = handler

    def close_now(self) -> None:
        """:meth:`close`, from sync code."""
        self.link.to_engine.close_after()
        self.link.to_worker.close()

    def send_now(self, item: wire.Frame | str | list[str]) -> bool:
        """Send a packed frame at once: ``False`` when it must go through :meth:`send` (text,
        or the engine's pipe is full)."""
        return type(item) is dict and self.link.to_engine.put_nowait(item)

    def __aiter__(self) -> AsyncIterator[wire.Frame]:
        return self

    async def __anext__(self) -> wire.Frame:
        frame = await self.link.to_worker.get()
        if frame is None:
            raise StopAsyncIteration
        return frame

    async def close(self) -> None:
        """The engine gets the frames already sent, then the end; nothing more is read."""
        self.close_now()


# -- the process-local registry of engines ----------------------------------------------------

Accept = Callable[[Link], None]


@dataclass(eq=False)
class _Engine:
    loop: asyncio.AbstractEventLoop
    accept: Accept
    queue_size: int


_engines: dict[str, _Engine] = {}
_engines_lock = threading.Lock()


def normalise_url(url: str) -> str:
    """``url`` as registry key: lower-case, no trailing ``/``."""
    return url.strip().rstrip("/").lower()


def serve(
    url: str, loop: asyncio.AbstractEventLoop, accept: Accept, queue_size: int
) -> Callable[[], None]:
    """Offer the engine serving ``url`` (on ``loop``) to clients of this process.

    ``accept(link)`` is called on ``loop`` for each client that connects in memory; each pipe
    holds at most ``queue_size`` frames. Returns the function that withdraws the offer
    (connected links stay up). Raises ``RuntimeError`` when another engine of this process
    offers ``url`` already.
    """
    key = normalise_url(url)
    entry = _Engine(loop, accept, queue_size)
    with _engines_lock:
        if key in _engines:
            raise RuntimeError(f"an engine of this process already serves {url} in memory")
        _engines[key] = entry

    def withdraw() -> None:
        with _engines_lock:
            if _engines.get(key) is entry:
                del _engines[key]

    return withdraw


def connect(
    url: str, headers: dict[str, str], transport: Transport
) -> MemoryClientConnection | None:
    """An in-memory connection to the engine of this process serving ``url``, or ``None`` when
    ``transport`` (see the module docstring) says to use a WebSocket. Call on the client's loop."""
    if transport == "websocket":
        return None
    with _engines_lock:
        entry = _engines.get(normalise_url(url))
    if entry is None or entry.loop.is_closed():
        return None
    loop = asyncio.get_running_loop()
    if transport == "auto" and entry.loop is not loop:
        return None
    link = Link(Pipe(entry.queue_size), Pipe(entry.queue_size), dict(headers))
    if entry.loop is loop:
        entry.accept(link)
    else:
        entry.loop.call_soon_threadsafe(entry.accept, link)
    return MemoryClientConnection(link)


def resolve_transport(value: str | None) -> Transport:
    """``value``, else ``$III_TRANSPORT``, else ``auto``; ``ValueError`` for another name."""
    name = (value or os.environ.get("III_TRANSPORT") or "auto").strip().lower()
    for transport in TRANSPORTS:
        if name == transport:
            return transport
    raise ValueError(f"unknown transport {name!r}: expected one of {', '.join(TRANSPORTS)}")
