"""Data channels (protocol.md §6): bounded FIFOs between a write socket and a read socket.

``GET /ws/channels/{id}?key=…&dir=read|write``. Items keep their frame type (text or binary).
Each end attaches once; a second socket for a taken end is accepted and closed at once. The
write socket blocks when the FIFO holds ``capacity`` items or ``max_bytes`` bytes, or when the
engine-wide channel budget is spent (issue 13; backpressure reaches TCP because the next frame
is not read). The reader gets a Close when the writer is gone and the FIFO is empty.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import parse_qs

from iii_asgi._asgi import TEXT, send_response

from ..types import Receive, Scope, Send
from .budget import ByteBudget

__all__ = [
    "DEFAULT_BUFFER",
    "MAX_BUFFER",
    "Channel",
    "ChannelLimits",
    "ChannelStore",
    "new_uuid4",
    "serve_channel",
]

logger = logging.getLogger("iii_asgi.engine")

DEFAULT_BUFFER = 64
MAX_BUFFER = 1024
#: Bytes a channel buffers without drawing on the engine's channel budget: one SDK chunk
#: (protocol.md §6.5), so a channel can always move small frames one at a time.
CHANNEL_ALLOWANCE = 64 * 1024
Item = tuple[bool, Any]  # (is_text, str | bytes)


class ChannelLimits:
    """The byte bounds shared by the channels of one store: ``max_bytes`` per channel and the
    engine-wide ``budget``, of which each channel's first ``allowance`` bytes are free.
    ``waiting`` holds channels whose writer waits for the budget."""

    __slots__ = ("allowance", "budget", "max_bytes", "waiting")

    def __init__(self, max_bytes: int, budget: ByteBudget, allowance: int = CHANNEL_ALLOWANCE):
        self.max_bytes = max_bytes
        self.budget = budget
        self.allowance = allowance
        self.waiting: set[Channel] = set()

    def wake_waiting(self) -> None:
        """Budget came back: let every waiting writer try again."""
        waiting = list(self.waiting)
        self.waiting.clear()
        for channel in waiting:
            channel._wake_writer()


UNLIMITED = ChannelLimits(2**62, ByteBudget(2**62))


_UUID_BATCH = 64
_uuid_pool: list[str] = []


def new_uuid4() -> str:
    """A random UUID v4 string. ``str(uuid.uuid4())`` costs 2.5 µs and one ``getrandom``
    syscall; these come from one syscall per 64 (two per HTTP request: the channels' shared
    access key and the invocation id)."""
    if not _uuid_pool:
        _refill()
    return _uuid_pool.pop()


#: The 128-bit masks of a batch of UUIDs: version 4 and the RFC 4122 variant in each.
_KEEP = int.from_bytes(bytes.fromhex("ffffffffffff0fff3fffffffffffffff") * _UUID_BATCH, "big")
_SET = int.from_bytes(bytes.fromhex("00000000000040008000000000000000") * _UUID_BATCH, "big")


def _refill() -> None:
    bits = (int.from_bytes(os.urandom(16 * _UUID_BATCH), "big") & _KEEP) | _SET
    h = bits.to_bytes(16 * _UUID_BATCH, "big").hex()
    _uuid_pool.extend(
        f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-{h[i + 12 : i + 16]}-{h[i + 16 : i + 20]}-"
        f"{h[i + 20 : i + 32]}"
        for i in range(0, len(h), 32)
    )


_ID_PREFIX = new_uuid4()[:24]  # "xxxxxxxx-xxxx-4xxx-yxxx-": version and variant in place
_id_counter = itertools.count(1)


def new_channel_id() -> str:
    """A unique channel id shaped like a UUID v4: a random per-process prefix and a counter.
    Channel ids need not be secret (the access key is the only credential, protocol.md §6.1);
    this costs a fifth of a random one."""
    return f"{_ID_PREFIX}{next(_id_counter):012x}"


class Channel:
    """One channel: ``capacity`` items (frames) and ``limits.max_bytes`` bytes, single writer,
    single reader. ``nbytes`` is what it buffers (``len()`` of the items), ``borrowed`` what of
    that it holds from the engine's channel budget.

    Creating one costs a counter-based id, a pooled UUID key (or a shared one) and a few
    attributes: nothing waits, no event objects exist until a side has to wait (the HTTP
    trigger makes two per request and most are never attached).
    """

    __slots__ = (
        "_readable",
        "_writable",
        "borrowed",
        "capacity",
        "closer",
        "created",
        "deleted",
        "id",
        "items",
        "key",
        "limits",
        "nbytes",
        "owner",
        "reader_attached",
        "reader_done",
        "writer_attached",
        "writer_done",
    )

    def __init__(
        self,
        capacity: int = DEFAULT_BUFFER,
        owner: object | None = None,
        key: str | None = None,
        limits: ChannelLimits = UNLIMITED,
    ) -> None:
        self.id = new_channel_id()
        self.key = key or new_uuid4()
        self.capacity = max(1, min(MAX_BUFFER, capacity))
        self.owner = owner
        self.limits = limits
        self.created = time.monotonic()
        self.items: deque[Item] = deque()
        self.nbytes = 0
        self.borrowed = 0
        self.writer_attached = False
        self.reader_attached = False
        self.writer_done = False
        self.reader_done = False
        self.deleted = False
        # One-shot waiters of the reader and the writer side (created when a side waits).
        self._readable: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None
        #: Called once when the channel is deleted (closes an attached write socket).
        self.closer: Callable[[], None] | None = None

    def ref(self, direction: str) -> dict[str, str]:
        """A StreamChannelRef (§2.0) for ``direction`` ``"read"`` or ``"write"``."""
        return {"channel_id": self.id, "access_key": self.key, "direction": direction}

    async def put(self, item: Item) -> bool:
        """Append an item, waiting while the channel is full (``capacity`` items or
        ``max_bytes`` bytes; an empty channel takes any one item) or the engine's channel
        budget cannot hold it; False once the channel is deleted."""
        size = len(item[1])
        limits = self.limits
        items = self.items
        while not self.deleted:
            if items and (len(items) >= self.capacity or self.nbytes + size > limits.max_bytes):
                await self._writer_waiter()
                continue
            need = self.nbytes + size - limits.allowance - self.borrowed
            if need > 0:
                if not limits.budget.charge(need):
                    limits.waiting.add(self)
                    await self._writer_waiter()
                    continue
                self.borrowed += need
            items.append(item)
            self.nbytes += size
            self.wake()
            return True
        return False

    async def get(self) -> Item | None:
        """Next item, or ``None`` at end of stream (writer gone or channel deleted)."""
        while not self.items:
            if self.writer_done or self.deleted:
                return None
            await self._reader_waiter()
        return self._pop()

    def put_nowait(self, item: Item) -> None:
        """Append an item whatever the capacity and budget: for an engine-side writer whose
        data is already in memory (a buffered HTTP request body, bounded by the HTTP port's
        own budget), where backpressure would gain nothing. Its bytes are still counted."""
        if not self.deleted:
            size = len(item[1])
            self.items.append(item)
            self.nbytes += size
            need = self.nbytes - self.limits.allowance - self.borrowed
            if need > 0:
                self.limits.budget.force(need)
                self.borrowed += need
            self.wake()

    def get_nowait(self) -> Item | Literal[False] | None:
        """Next item; ``None`` at end of stream; ``False`` when nothing is queued yet."""
        if self.items:
            return self._pop()
        if self.writer_done or self.deleted:
            return None
        return False

    async def readable(self) -> None:
        """Wait until an item or end of stream may be available, or :meth:`wake` is called."""
        if not self.items and not self.writer_done and not self.deleted:
            await self._reader_waiter()

    def wake(self, _: object = None) -> None:
        """Wake a task waiting in :meth:`readable` or :meth:`get` (also usable as a future's
        done callback, for an engine-side reader waiting on an invocation result too)."""
        waiter = self._readable
        if waiter is not None:
            self._readable = None
            if not waiter.done():
                waiter.set_result(None)

    def _pop(self) -> Item:
        item = self.items.popleft()
        self.nbytes -= len(item[1])
        if self.borrowed:
            self._give_back()
        self._wake_writer()
        return item

    def _give_back(self) -> None:
        surplus = self.borrowed - max(0, self.nbytes - self.limits.allowance)
        if surplus > 0:
            self.borrowed -= surplus
            self.limits.budget.release(surplus)
            self.limits.wake_waiting()

    def _writer_waiter(self) -> asyncio.Future[None]:
        waiter = self._writable
        if waiter is None or waiter.done():
            waiter = self._writable = asyncio.get_running_loop().create_future()
        return waiter

    def _reader_waiter(self) -> asyncio.Future[None]:
        waiter = self._readable
        if waiter is None or waiter.done():
            waiter = self._readable = asyncio.get_running_loop().create_future()
        return waiter

    def _wake_writer(self) -> None:
        waiter = self._writable
        if waiter is not None:
            self._writable = None
            if not waiter.done():
                waiter.set_result(None)

    def finish_writer(self) -> None:
        """Drop the sender: the end-of-stream signal (§6.3)."""
        self.writer_done = True
        self.wake()

    def delete(self) -> None:
        """End the channel: both sides stop, buffered items are dropped and their bytes given
        back."""
        self.deleted = True
        self.writer_done = True
        self.items.clear()
        self.nbytes = 0
        if self.borrowed:
            self._give_back()
        self.limits.waiting.discard(self)
        self.wake()
        self._wake_writer()
        closer, self.closer = self.closer, None
        if closer is not None:
            closer()


class ChannelStore:
    """Every live channel, with the TTL sweep of §6.4. ``max_bytes`` bounds each channel's
    buffer, ``budget`` all of them together (``EngineConfig.channel_max_bytes`` /
    ``channel_budget_bytes``); without them channels are bounded in frames only."""

    def __init__(
        self,
        ttl_s: float = 300.0,
        *,
        max_bytes: int | None = None,
        budget: ByteBudget | None = None,
    ) -> None:
        self.ttl_s = ttl_s
        self.channels: dict[str, Channel] = {}
        self.limits = (
            UNLIMITED
            if max_bytes is None and budget is None
            else ChannelLimits(max_bytes or 2**62, budget or ByteBudget(2**62))
        )

    def create(
        self, buffer_size: int | None = None, owner: object | None = None, key: str | None = None
    ) -> Channel:
        """A new channel; ``key`` shares one access key between channels handed to the same
        function (the HTTP trigger's two per request), else a fresh UUID. A channel with an
        ``owner`` is deleted with it (:meth:`delete_owned`)."""
        channel = Channel(
            DEFAULT_BUFFER if buffer_size is None else buffer_size, owner, key, self.limits
        )
        self.channels[channel.id] = channel
        return channel

    def delete(self, channel_id: str) -> None:
        channel = self.channels.pop(channel_id, None)
        if channel is not None:
            channel.delete()

    def delete_owned(self, owner: object) -> None:
        for channel in [c for c in self.channels.values() if c.owner is owner]:
            self.delete(channel.id)

    def sweep(self, now: float | None = None) -> int:
        """Delete channels older than ``ttl_s`` with an end never attached; returns the count."""
        now = time.monotonic() if now is None else now
        stale = [
            c.id
            for c in self.channels.values()
            if now - c.created > self.ttl_s and not (c.writer_attached and c.reader_attached)
        ]
        for channel_id in stale:
            self.delete(channel_id)
        return len(stale)

    async def sweep_forever(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            count = self.sweep()
            if count:
                logger.info("channel sweep deleted %d channel(s)", count)

    def close_all(self) -> None:
        for channel_id in list(self.channels):
            self.delete(channel_id)

    def finished(self, channel: Channel) -> None:
        """Forget a channel once both ends are done."""
        if channel.writer_done and channel.reader_done:
            self.channels.pop(channel.id, None)


async def _http_error(send: Send, status: int, text: str) -> None:
    # a plain HTTP response instead of the upgrade
    await send_response(send, status, text.encode(), TEXT, "websocket.http.response")


async def serve_channel(
    store: ChannelStore, channel_id: str, scope: Scope, receive: Receive, send: Send
) -> None:
    """ASGI handler of ``/ws/channels/{channel_id}`` (§6.2, §6.3).

    Missing ``key`` or a ``dir`` other than read/write → HTTP 400; unknown channel or wrong key
    → HTTP 404 "Channel not found" (both without upgrade).
    """
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    key = query.get("key", [None])[-1]
    direction = query.get("dir", [None])[-1]
    if not key or direction not in ("read", "write"):
        await _http_error(send, 400, "Missing or invalid query parameters: key, dir=read|write")
        return
    channel = store.channels.get(channel_id)
    if channel is None or channel.key != key:
        await _http_error(send, 404, "Channel not found")
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    if direction == "write":
        if channel.writer_attached:
            await send({"type": "websocket.close", "code": 1000})
            return
        channel.writer_attached = True
        closing = _Closing(send)
        channel.closer = closing.start
        await _pump_in(store, channel, receive, closing)
    else:
        if channel.reader_attached:
            await send({"type": "websocket.close", "code": 1000})
            return
        channel.reader_attached = True
        await _pump_out(store, channel, send)


class _Closing:
    """Closes a write socket once, from its pump or when its channel is deleted meanwhile (a
    deleted channel's writer would otherwise keep its socket open, both sides idle)."""

    __slots__ = ("closed", "send")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.closed = False

    def start(self) -> None:
        if not self.closed:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # deleted off the loop: the socket ends with the engine
                return
            self.closed = True
            task = loop.create_task(self._close())
            _closing.add(task)
            task.add_done_callback(_closing.discard)

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            await self._close()

    async def _close(self) -> None:
        try:
            await self.send({"type": "websocket.close", "code": 1000})
        except Exception:  # the socket is gone already
            logger.debug("write socket already closed")


_closing: set[asyncio.Task[None]] = set()


async def _pump_in(
    store: ChannelStore, channel: Channel, receive: Receive, closing: _Closing
) -> None:
    # Frames sent before the client's Close arrive before websocket.disconnect, so the
    # engine's 10 ms post-Close drain (§6.3) is implicit here.
    try:
        while True:
            message = await receive()
            if message["type"] == "websocket.receive":
                text = message.get("text")
                item: Item = (
                    (True, text) if text is not None else (False, message.get("bytes") or b"")
                )
                if not await channel.put(item):
                    await closing.close()
                    return
            elif message["type"] == "websocket.disconnect":
                return
    finally:
        channel.closer = None
        channel.finish_writer()
        store.finished(channel)


async def _pump_out(store: ChannelStore, channel: Channel, send: Send) -> None:
    try:
        while True:
            item = await channel.get()
            if item is None:
                await send({"type": "websocket.close", "code": 1000})
                return
            is_text, data = item
            if is_text:
                await send({"type": "websocket.send", "text": data})
            else:
                await send({"type": "websocket.send", "bytes": data})
    except Exception:  # socket gone (uvicorn raises ClientDisconnected)
        logger.debug("reader of channel %s went away", channel.id)
    finally:
        channel.reader_done = True
        store.finished(channel)
