"""Data channels: byte/text streams between workers through the engine (protocol.md §6).

A channel has a write end and a read end, each identified by a :class:`StreamChannelRef`. Refs
travel inside ordinary JSON payloads; the SDK turns every ref it finds in a handler's payload into
a live :class:`ChannelReader` or :class:`ChannelWriter` (§6.5). Sockets connect lazily, on first
use, to ``{engine}/ws/channels/{channel_id}?key={access_key}&dir={read|write}`` (§6.2).

- :class:`ChannelWriter`: ``await write(bytes)`` sends binary frames of at most 64 KiB;
  ``send_message(str)`` sends one text frame; ``close()`` ends the stream.
- :class:`ChannelReader`: ``async for chunk in reader`` yields the binary frames as ``bytes``;
  text frames go to the callbacks given to ``on_message``; ``read_all()`` joins every chunk.

Also the official 0.25 ``iii.channels`` names: :class:`ChannelDirection`, :class:`ChannelItem`,
the Node-style ``.stream`` views (:class:`WritableStream` / :class:`ReadableStream`),
:func:`build_channel_url`, :func:`resolve_headers`, :data:`MAX_FRAME_SIZE`, and
:func:`extract_channel_refs`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal
from urllib.parse import quote, urlsplit, urlunsplit

import websockets
from pydantic import BaseModel
from websockets.asyncio.client import ClientConnection

from .options import resolve_headers
from .protocol import CHANNEL_CHUNK_SIZE, MAX_MESSAGE_SIZE, is_channel_ref

__all__ = [
    "MAX_FRAME_SIZE",
    "Channel",
    "ChannelDirection",
    "ChannelError",
    "ChannelItem",
    "ChannelReader",
    "ChannelWriter",
    "ReadableStream",
    "StreamChannelRef",
    "WritableStream",
    "build_channel_url",
    "channel_url",
    "extract_channel_refs",
    "resolve_channel_refs",
    "resolve_headers",
]

logger = logging.getLogger("iii.channels")

MessageCallback = Callable[[str], Any]
#: Largest binary frame a writer sends, in bytes (protocol.md §6.5; the 0.25 name).
MAX_FRAME_SIZE = CHANNEL_CHUNK_SIZE


class ChannelDirection(str, enum.Enum):
    """The ``direction`` of a :class:`StreamChannelRef` (the wire values ``read`` / ``write``)."""

    READ = "read"
    WRITE = "write"


@dataclass
class ChannelItem:
    """One channel frame: exactly one of ``text`` (a text frame) or ``binary`` is set.

    Raises ``ValueError`` when both or neither are given.

    >>> ChannelItem.text_item("meta").is_text
    True
    """

    text: str | None = None
    binary: bytes | None = None

    def __post_init__(self) -> None:
        if (self.text is None) == (self.binary is None):
            raise ValueError("ChannelItem takes exactly one of text or binary")

    @classmethod
    def text_item(cls, value: str) -> ChannelItem:
        return cls(text=value)

    @classmethod
    def binary_item(cls, value: bytes) -> ChannelItem:
        return cls(binary=value)

    @property
    def is_text(self) -> bool:
        return self.text is not None

    @property
    def is_binary(self) -> bool:
        return self.binary is not None


class ChannelError(ConnectionError):
    """A channel socket could not be opened (unknown channel, wrong key, engine unreachable)."""


class StreamChannelRef(BaseModel):
    """Identifies one end of a channel: ``{channel_id, access_key, direction}`` (§2.0)."""

    channel_id: str
    access_key: str
    direction: Literal["read", "write"]


def channel_url(engine_ws_base: str, ref: StreamChannelRef) -> str:
    """The socket URL for ``ref`` (protocol.md §6.2); a query on the base URL is kept first."""
    parts = urlsplit(engine_ws_base)
    path = parts.path.rstrip("/") + f"/ws/channels/{quote(ref.channel_id, safe='')}"
    query = f"key={quote(ref.access_key, safe='')}&dir={ref.direction}"
    if parts.query:
        query = f"{parts.query}&{query}"
    return urlunsplit((parts.scheme, parts.netloc, path, query, ""))


def build_channel_url(engine_ws_base: str, channel_id: str, access_key: str, direction: str) -> str:
    """:func:`channel_url` from the ref's parts (the 0.25 signature)."""
    ref = StreamChannelRef.model_construct(
        channel_id=channel_id, access_key=access_key, direction=direction
    )
    return channel_url(engine_ws_base, ref)


class _ChannelEnd:
    # A handler often never touches its channels (every HTTP-triggered call carries two refs):
    # the ref model and the URL are built on first use, not per call.
    def __init__(
        self,
        engine_ws_base: str,
        ref: StreamChannelRef | Mapping[str, Any],
        headers: Mapping[str, str] | None = None,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._ref: StreamChannelRef | None = None
        self._raw_ref: Mapping[str, Any] = {}
        if isinstance(ref, StreamChannelRef):
            self._ref = ref
        elif is_channel_ref(ref):
            self._raw_ref = ref  # validated on first use of ``ref``
        else:
            self._ref = StreamChannelRef(**ref)  # raises ValidationError for a malformed ref
        self._base = engine_ws_base
        self._url: str | None = None
        self._headers = headers
        self._loop = loop
        self._ws: ClientConnection | None = None
        self._connecting: asyncio.Future[ClientConnection] | None = None
        self._closed = False
        self._callbacks: list[MessageCallback] = []  # text-frame callbacks (reader side)

    @property
    def ref(self) -> StreamChannelRef:
        """This end's ref."""
        if self._ref is None:
            self._ref = StreamChannelRef(**self._raw_ref)
        return self._ref

    @property
    def url(self) -> str:
        """The socket URL of this end (protocol.md §6.2)."""
        if self._url is None:
            self._url = channel_url(self._base, self.ref)
        return self._url

    async def _socket(self) -> ClientConnection:
        if self._ws is not None:
            return self._ws
        if self._closed:
            raise ChannelError(f"channel {self.ref.channel_id} is closed")
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._open())
        return await asyncio.shield(self._connecting)

    async def _open(self) -> ClientConnection:
        try:
            ws = await websockets.connect(
                self.url,
                additional_headers=dict(self._headers or {}),
                max_size=MAX_MESSAGE_SIZE,
                compression=None,
            )
        except websockets.InvalidStatus as exc:
            status = exc.response.status_code
            raise ChannelError(
                f"channel {self.ref.channel_id} ({self.ref.direction}) refused by the engine: "
                f"HTTP {status}" + (" (unknown channel or wrong key)" if status == 404 else "")
            ) from None
        except OSError as exc:
            raise ChannelError(f"cannot reach channel endpoint {self.url}: {exc}") from exc
        self._ws = ws
        return ws

    def _run_sync(self, coro: Awaitable[None]) -> Awaitable[None] | None:
        """Run ``coro`` from any context: a task on a running loop, else block on the SDK loop."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            if self._loop is None or not self._loop.is_running():
                asyncio.run(_as_coroutine(coro))
            else:
                asyncio.run_coroutine_threadsafe(_as_coroutine(coro), self._loop).result()
            return None
        return asyncio.ensure_future(coro)

    async def close_async(self) -> None:
        """Close the socket; for a writer this is the end-of-stream signal (§6.3)."""
        self._closed = True
        if self._connecting is not None and self._ws is None:
            try:
                await self._connecting
            except ChannelError:
                return
        if self._ws is not None:
            await self._ws.close()

    def close(self) -> Awaitable[None] | None:
        """Close the channel end. Awaitable inside a loop (``await w.close()``); blocking
        outside one."""
        return self._run_sync(self.close_async())


async def _as_coroutine(aw: Awaitable[None]) -> None:
    await aw


class ChannelWriter(_ChannelEnd):
    """The write end of a channel.

    >>> await writer.write(b"chunk")        # binary frames of <= 64 KiB
    >>> await writer.send_message("meta")   # one text frame
    >>> await writer.close()                # end of stream for the reader
    """

    @property
    def stream(self) -> WritableStream:
        """A Node-style view: ``stream.write(bytes)`` / ``stream.end()`` (0.25)."""
        return WritableStream(self)

    async def write(self, data: bytes | bytearray | memoryview | str) -> None:
        """Send ``data`` as binary frames of at most 64 KiB (a ``str`` is UTF-8 encoded).

        Raises ``TypeError`` for other types (use :meth:`send_message` for text frames) and
        :class:`ChannelError` when the socket cannot be opened.
        """
        if isinstance(data, str):
            data = data.encode()
        elif not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"ChannelWriter.write() takes bytes, not {type(data).__name__}; "
                "serialise it first, or use send_message() for a text frame"
            )
        ws = await self._socket()
        view = memoryview(data)
        if len(view) == 0:
            return
        for start in range(0, len(view), CHANNEL_CHUNK_SIZE):
            await ws.send(view[start : start + CHANNEL_CHUNK_SIZE])

    async def send_message_async(self, message: str) -> None:
        """Send one text frame (e.g. a control message)."""
        ws = await self._socket()
        await ws.send(message)

    def send_message(self, message: str) -> Awaitable[None] | None:
        """Send one text frame; awaitable inside a loop, blocking outside one."""
        return self._run_sync(self.send_message_async(message))


class ChannelReader(_ChannelEnd):
    """The read end of a channel: an async iterator of ``bytes`` chunks.

    >>> reader.on_message(lambda text: print("text frame", text))
    >>> async for chunk in reader: ...
    >>> body = await reader.read_all()
    """

    @property
    def stream(self) -> ReadableStream:
        """A Node-style view: ``async for chunk in reader.stream`` (0.25)."""
        return ReadableStream(self)

    def on_message(self, callback: MessageCallback) -> Callable[[], None]:
        """Call ``callback(text)`` (sync or async) for every text frame; returns an unsubscribe."""
        self._callbacks.append(callback)

        def unsubscribe() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

        return unsubscribe

    async def __aiter__(self) -> AsyncIterator[bytes]:
        ws = await self._socket()
        try:
            async for message in ws:
                if isinstance(message, str):
                    await self._dispatch_text(message)
                else:
                    yield message
        except websockets.ConnectionClosedError:
            # An abnormal writer disconnect looks like end of stream (protocol.md §6.3).
            return

    async def _dispatch_text(self, text: str) -> None:
        for callback in list(self._callbacks):
            try:
                outcome = callback(text)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:
                logger.exception("channel on_message callback failed")

    async def read_all(self) -> bytes:
        """Read until the writer closes; returns every binary frame joined."""
        return b"".join([chunk async for chunk in self])


class WritableStream:
    """``writer.stream``: fire-and-forget writes (the 0.25 Node-style view).

    ``write(data)`` and ``end(data=None)`` schedule the write (and, for ``end``, the close) as a
    task on the running loop and return it, so ``await res.stream.write(b"...")`` also works;
    called outside a loop they run to completion and return ``None``.
    """

    #: Writes scheduled on a running loop, kept until done (a task needs a live reference).
    _pending: ClassVar[set[asyncio.Task[None]]] = set()

    def __init__(self, writer: ChannelWriter) -> None:
        self._writer = writer

    def write(self, data: bytes) -> asyncio.Task[None] | None:
        return self._start(self._writer.write(data))

    def end(self, data: bytes | None = None) -> asyncio.Task[None] | None:
        return self._start(self._end(data))

    async def _end(self, data: bytes | None) -> None:
        if data is not None:
            await self._writer.write(data)
        await self._writer.close_async()

    @staticmethod
    def _start(coro: Awaitable[None]) -> asyncio.Task[None] | None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(_as_coroutine(coro))
            return None
        task = loop.create_task(_as_coroutine(coro))
        WritableStream._pending.add(task)
        task.add_done_callback(WritableStream._pending.discard)
        return task


class ReadableStream:
    """``reader.stream``: ``async for chunk in stream`` yields the binary frames (0.25)."""

    def __init__(self, reader: ChannelReader) -> None:
        self._reader = reader

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._reader:
            yield chunk


@dataclass
class Channel:
    """Both ends of a new channel and their refs (``create_channel``)."""

    writer: ChannelWriter
    reader: ChannelReader
    writer_ref: StreamChannelRef
    reader_ref: StreamChannelRef


def resolve_channel_refs(
    value: Any,
    engine_ws_base: str,
    headers: Mapping[str, str] | None = None,
    loop: asyncio.AbstractEventLoop | None = None,
    *,
    limit: int | None = None,
) -> Any:
    """Replace every channel ref nested in dicts/lists/tuples by a live reader or writer (§6.5).

    Returns ``value`` itself when it holds no refs (no copy is made). ``limit``: the most refs
    ``value`` can hold (e.g. how often its JSON text names ``access_key``); the first level of a
    dict is searched first and the walk ends there once that many are found (an HTTP trigger
    payload carries its two refs at the first level).
    """
    if limit is not None and type(value) is dict and not is_channel_ref(value):
        found = 0
        for key, item in value.items():
            if type(item) is dict and is_channel_ref(item):
                value[key] = _channel_end(item, engine_ws_base, headers, loop)
                found += 1
        if found >= limit:
            return value
    return _resolve(value, engine_ws_base, headers, loop)


def _channel_end(
    ref: dict[str, Any],
    engine_ws_base: str,
    headers: Mapping[str, str] | None,
    loop: asyncio.AbstractEventLoop | None,
) -> ChannelReader | ChannelWriter:
    cls = ChannelReader if ref["direction"] == "read" else ChannelWriter
    return cls(engine_ws_base, ref, headers, loop=loop)


def _resolve(
    value: Any,
    engine_ws_base: str,
    headers: Mapping[str, str] | None,
    loop: asyncio.AbstractEventLoop | None,
) -> Any:
    if isinstance(value, dict):
        if is_channel_ref(value):
            return _channel_end(value, engine_ws_base, headers, loop)
        for key, item in value.items():
            if isinstance(item, (dict, list, tuple)):
                value[key] = _resolve(item, engine_ws_base, headers, loop)
        return value
    if isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, (dict, list, tuple)):
                value[index] = _resolve(item, engine_ws_base, headers, loop)
        return value
    if isinstance(value, tuple):
        return tuple(_resolve(item, engine_ws_base, headers, loop) for item in value)
    return value


def extract_channel_refs(data: Any) -> list[tuple[str, StreamChannelRef]]:
    """Every channel ref nested in dicts and lists, as ``(path, ref)`` pairs in walk order.

    Paths are dotted for keys and bracketed for list indices (``"items[0].writer"``); a ref at
    the top level has path ``""``. Dicts that look like a ref but fail validation are skipped.
    """
    found: list[tuple[str, StreamChannelRef]] = []

    def walk(value: Any, path: str) -> None:
        if is_channel_ref(value):
            with contextlib.suppress(ValueError):
                found.append((path, StreamChannelRef(**value)))
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}" if path else str(key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{path}[{index}]")

    walk(data, "")
    return found
