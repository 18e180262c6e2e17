"""uvicorn's ``websockets-sansio`` protocol with one socket write per event-loop iteration, and
the frame budget of the worker listener (issue 13).

The engine sends a worker one frame per invocation; under load many invocations start in the
same iteration (one per HTTP request read), and each frame was its own ``write`` syscall. The
transport is wrapped in :class:`iii._transport.CoalescingTransport`, so what is written during
an iteration leaves as one ``writelines`` at its end. Selected by ``EngineConfig.ws =
"websockets-sansio"`` (the default).

Each socket also charges the bytes of the messages it holds to the engine's frame budget
(``EngineConfig.frame_budget_bytes``, :mod:`iii_asgi.engine.core.budget`): a message while it
arrives (the parser's buffer and the fragments so far), then, once complete and larger than
64 KiB, twice (its bytes and the text decoded from them) until the application asks for the
next message (the worker socket's read loop handles
one message at a time; a channel write socket has queued it in its channel by then, where the
channel budget counts it). When a
message does not fit, the socket is closed with 1009. Its :class:`FrameAccount` is handed to
the application as ``scope["extensions"]["iii.frames"]``, so the frames queued to the socket
are charged to the same account, and ``account.abort`` can drop a peer that stopped reading.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, ClassVar

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState

from iii._transport import CoalescingTransport

from ...core.budget import SOCKET_ALLOWANCE, ByteBudget, FrameAccount

__all__ = ["CoalescingWebSocketProtocol", "MeteredWebSocketProtocol", "ws_protocol"]

#: Complete messages up to this size are not tracked: reading pauses after each message, so
#: at most one read's worth of them waits.
_TRACKED = 64 * 1024
#: How long a closed socket may take to flush its Close before it is dropped, in seconds.
_ABORT_AFTER_S = 1.0


class CoalescingWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's protocol on a coalescing transport, offering :meth:`send_now` to the
    application as ``scope["extensions"]["iii.send_now"]``."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        wrapped = CoalescingTransport(transport, self.loop)  # type: ignore[arg-type]
        super().connection_made(wrapped)  # type: ignore[arg-type]

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"].update(self.extensions())

    def extensions(self) -> dict[str, Any]:
        """What this protocol adds to ``scope["extensions"]`` of each socket it accepts."""
        return {"iii.send_now": self.send_now}

    def send_now(self, text: str) -> bool:
        """Write one text message without waiting, as ``send({"type": "websocket.send"})``
        would once the socket is writable: ``True`` when written (it leaves with this
        iteration's other writes), ``False`` when the socket cannot take it now (not open, its
        transport paused, or closing): then send it the ASGI way."""
        if (
            not self.handshake_complete
            or self.close_sent
            or self.disconnected
            or self.initial_response is not None
            or not self.writable.is_set()
        ):
            return False
        try:
            self.conn.send_text(text.encode())
        except InvalidState:
            return False
        self.transport.write(b"".join(self.conn.data_to_send()))
        return True


class MeteredWebSocketProtocol(CoalescingWebSocketProtocol):
    """:class:`CoalescingWebSocketProtocol` charging its messages to ``budget`` (set per
    engine by :func:`ws_protocol`)."""

    budget: ClassVar[ByteBudget]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.account = FrameAccount(self.budget, SOCKET_ALLOWANCE)
        self.account.abort = self.abort
        self._partial = 0  # bytes of the message being received, charged
        # Events queued for the application are numbered from 1 (``websocket.connect``); the
        # application has finished with every event numbered below its count of receive()
        # calls, since it reads one message at a time.
        self._queued = 1
        self._calls = 0
        self._large: deque[tuple[int, int]] = deque()  # (event number, size), charged

    def extensions(self) -> dict[str, Any]:
        return {**super().extensions(), "iii.frames": self.account}

    def data_received(self, data: bytes) -> None:
        _data_received(self, data)
        if self.frames or self._partial or self.conn.reader.buffer:
            self._charge_partial()

    def _charge_partial(self) -> None:
        partial = len(self.conn.reader.buffer)
        for fragment in self.frames:
            partial += len(fragment)
        change = partial - self._partial
        if change > 0 and not self.account.charge(change):
            self.abort(
                1009,
                f"message too big: the engine's frame budget ({self.budget.limit} bytes) is spent",
            )
            return
        if change < 0:
            self.account.release(-change)
        self._partial = partial

    def send_receive_event_to_app(self) -> None:
        frames = self.frames
        size = len(frames[0]) if len(frames) == 1 else sum(map(len, frames))
        _send_receive_event_to_app(self)
        self._queued += 1
        if size > _TRACKED:
            # held already (its partial charge goes after this); twice: the bytes and the text
            # decoded from them live on while the application handles it
            self.account.force(2 * size)
            self._large.append((self._queued, 2 * size))

    def receive(self) -> Any:  # returns the coroutine itself: no extra frame per message
        self._calls += 1
        large = self._large
        while large and large[0][0] < self._calls:  # finished by the application
            self.account.release(large.popleft()[1])
        return _receive(self)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.account.close()
        self._large.clear()

    def abort(self, code: int, reason: str) -> None:
        """Close with ``code`` at once: the Close frame is written, incoming data is dropped,
        the application gets ``websocket.disconnect``, and the connection is dropped after
        :data:`_ABORT_AFTER_S` if the peer does not take the Close."""
        if self.transport.is_closing() or self.disconnected:
            return
        self.frames = []
        self.conn.fail(code, reason[:120])
        self.transport.write(b"".join(self.conn.data_to_send()))
        if not self.close_sent:
            self.close_sent = True
            self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        self.account.close()
        self.transport.close()
        self.loop.call_later(_ABORT_AFTER_S, self._drop)

    def _drop(self) -> None:
        if not self.disconnected:
            self.transport.abort()


# The overridden methods of the per-message path call uvicorn's directly (cheaper than super()).
_data_received = CoalescingWebSocketProtocol.data_received
_send_receive_event_to_app = CoalescingWebSocketProtocol.send_receive_event_to_app
_receive = CoalescingWebSocketProtocol.receive


def ws_protocol(name: str, budget: ByteBudget | None = None) -> str | type[asyncio.Protocol]:
    """The uvicorn ``ws`` setting for ``EngineConfig.ws``: for ``websockets-sansio`` the
    coalescing class, metered against ``budget`` when given; else the name as given (those
    sockets' messages are bounded by ``max_message_size`` only)."""
    if name != "websockets-sansio":
        return name
    if budget is None:
        return CoalescingWebSocketProtocol
    return type("MeteredWebSocketProtocol", (MeteredWebSocketProtocol,), {"budget": budget})
