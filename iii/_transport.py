"""A transport wrapper that sends what is written during one event-loop iteration as one
``writelines`` at its end.

On loopback a ``write`` syscall costs the TCP work of both ends; a peer that answers many
requests per loop iteration (an SDK worker under load, the engine's HTTP server writing a
response head then its body) saves one syscall per extra write. Nothing waits longer than the
current iteration; ``close()`` and ``write_eof()`` send what is pending first. Used by the SDK's
worker connection and by the engine's HTTP server protocol.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.frames import Frame, Opcode
from websockets.protocol import Event, State

from .protocol import encode

__all__ = ["FLUSH_AT", "CoalescingClientConnection", "CoalescingTransport"]

#: Pending bytes that are written at once rather than at the end of the loop iteration.
FLUSH_AT = 64 * 1024


class CoalescingTransport:
    """Forwards to ``transport``; ``write`` calls made in one loop iteration go out as one,
    except that once :data:`FLUSH_AT` bytes are pending they go out at once (large bodies and
    bursts keep the transport's own flow control prompt)."""

    __slots__ = ("_loop", "_pending", "_size", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] | None = None
        self._size = 0

    def write(self, data: bytes) -> None:
        pending = self._pending
        if pending is None:
            if len(data) >= FLUSH_AT:
                self._transport.write(data)
                return
            self._pending = [data]
            self._size = len(data)
            self._loop.call_soon(self._flush)
        else:
            pending.append(data)
            self._size += len(data)
            if self._size >= FLUSH_AT:
                self._flush()

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def _flush(self) -> None:
        pending = self._pending
        if pending is not None:
            self._pending = None
            if not self._transport.is_closing():
                self._transport.writelines(pending)

    def get_write_buffer_size(self) -> int:
        pending = self._size if self._pending else 0
        return int(self._transport.get_write_buffer_size()) + pending

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending = None
        self._transport.abort()

    def is_closing(self) -> bool:
        return bool(self._transport.is_closing())

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def __getattr__(self, name: str) -> Any:  # get_extra_info, set_protocol, ...
        return getattr(self._transport, name)


class CoalescingClientConnection(ClientConnection):
    """A websockets client connection whose frames go out through a
    :class:`CoalescingTransport` (``websockets.connect(..., create_connection=...)``).

    ``inline``: the reader's handler for a complete text message that arrives while the reader
    waits for one (nothing queued): called with the message's bytes as the frame is parsed,
    instead of queueing it and waking the reader (one task hop and a copy less, same order); it
    returns ``False`` when it cannot take the message now (then it is queued)."""

    inline: Callable[[bytes | bytearray], bool] | None = None

    def process_event(self, event: Event) -> None:
        inline = self.inline
        if (
            inline is not None
            and isinstance(event, Frame)
            and event.opcode is Opcode.TEXT
            and event.fin
            and self.recv_messages.get_in_progress
            and not len(self.recv_messages.frames)
            and inline(bytes(event.data) if type(event.data) is memoryview else event.data)
        ):
            return
        super().process_event(event)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        wrapped = CoalescingTransport(transport, self.loop)  # type: ignore[arg-type]
        super().connection_made(wrapped)  # type: ignore[arg-type]

    def send_now(self, message: Any) -> bool:
        """Send a text message at once, without awaiting: ``False`` when it must go through
        :meth:`send` instead (not a plain ``str``, a fragmented send in progress, the transport
        paused for flow control, or the connection not open)."""
        if (
            type(message) is not str
            or self.send_in_progress is not None
            or self.paused
            or self.protocol.state is not State.OPEN
            or self.transport.is_closing()
        ):
            return False
        self.protocol.send_text(message.encode())
        self.send_data()
        return True

    def take_inline(self, handler: Callable[[bytes | bytearray], bool] | None) -> None:
        """Set :attr:`inline` (``None``: every message goes through the reader)."""
        self.inline = handler

    async def send(self, message: Any, *, text: bool | None = None) -> None:
        if type(message) is dict:  # packed for an in-memory link, sent after a reconnect
            message = encode(message)
        await super().send(message, text=text)
