"""uvicorn's httptools protocol with the HTTP port's bounds (issue 13), and one ``write`` per
loop iteration instead of one per ASGI ``send``.

**Bounds.** httptools accumulates a header value, and uvicorn the URL, by concatenating bytes
objects: a 128 MiB header took 20 s of one core. So the bytes of a request head are counted
before the parser sees them: a read that would take the head past ``max_header_bytes`` is fed
only up to the limit, and if the head is still incomplete the client gets 431 and the
connection closes, so the parser never holds more than the limit. The URL (414) and the
header count (431) are checked in the parser callbacks. A head must be complete within
``header_timeout_s`` of its first byte (of the connection, for the first request); a body
may not go silent for ``body_timeout_s`` while the engine reads it (both 408). An idle
keep-alive connection is closed after uvicorn's ``timeout_keep_alive``; bytes that begin no
request (bare CRLFs) do not keep it open. Every connection is admitted through the
listener's :class:`~iii_asgi.engine.workers.http.limits.Connections` (the cap).

A refusal is one JSON error envelope (``{"error":{"code","message"}}``) with
``connection: close``, then the end of our side of the connection and a close
:data:`LINGER_S` later; it is logged at WARNING, rate-limited
(:mod:`iii_asgi.engine.core.logs`), as are unparseable requests (400 ``BAD_REQUEST``).

**Writes.** uvicorn writes a response head as soon as ``http.response.start`` is sent and the
body at the next ``send``: two ``write`` syscalls. Here the transport is wrapped so that what
the protocol writes during one iteration of the event loop goes out as a single
``writelines`` at the end of it (head and body together, and the responses of several
pipelined requests). Nothing waits longer than that iteration, so streamed bodies still leave
as they are produced; ``close()`` sends what is pending first.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httptools
import pydantic_core
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from iii._transport import CoalescingTransport

from ...core.logs import RateLimitedLogger, truncate
from .limits import Connections, HttpLimits
from .responses import envelope

__all__ = ["HttpProtocol"]

logger = logging.getLogger("iii_asgi.engine.http")
bad_requests = RateLimitedLogger(logger)

#: After a refusal the socket stays open this long (seconds), reading nothing more, before it
#: closes: closing while the client still sends resets the connection, and a reset makes the
#: client's kernel drop the refusal it has not read yet. A client that reads while it sends
#: (browsers, curl) gets the refusal; one that only sends is stopped by TCP flow control,
#: costing the engine no reads.
LINGER_S = 1.0


class _Refused(Exception):
    """Raised in a parser callback to stop parsing a request that broke a bound."""


def _error_response(status: int, code: str, message: str) -> bytes:
    body = pydantic_core.to_json(envelope(code, message, with_id=status >= 500))
    return b"".join(
        [
            STATUS_LINE[status],
            b"content-type: application/json\r\ncontent-length: ",
            str(len(body)).encode(),
            b"\r\nconnection: close\r\n\r\n",
            body,
        ]
    )


class HttpProtocol(HttpToolsProtocol):
    """The HTTP trigger server's protocol class: ``uvicorn.Config(http=partial(HttpProtocol,
    limits=..., connections=...))``. Without ``limits`` the defaults of :class:`HttpLimits`
    apply; without ``connections`` there is no cap."""

    def __init__(
        self,
        *args: Any,
        limits: HttpLimits | None = None,
        connections: Connections | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits or HttpLimits()
        self.pool = connections
        self.in_message = False  # between on_message_begin and on_message_complete
        self.in_body = False  # head complete, body not yet
        self.heads = 0  # heads completed on this connection
        self._head_bytes = 0  # bytes of the current head fed to the parser
        self._url_bytes = 0
        self._header_count = 0
        self._refusal: tuple[int, str, str] | None = None
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._last_read = 0.0
        self.lingering = False  # refused: closing in a moment

    # -- connection ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
        if self.pool is not None and not self.pool.add(self):
            bad_requests.warning(
                "http_full",
                "HTTP port full (%d connections, all busy): 503 to %s",
                self.pool.limit,
                self._peer(),
            )
            message = "Too many connections; retry later"
            self.transport.write(_error_response(503, "TOO_MANY_CONNECTIONS", message))
            self.transport.close()
            return
        self._head_timer = self.loop.call_later(self.limits.header_timeout_s, self._head_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.pool is not None:
            self.pool.discard(self)
        self._cancel_timers()
        super().connection_lost(exc)

    def _cancel_timers(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def idle(self) -> bool:
        """No request in progress: new, keep-alive between requests, or refused."""
        cycle = self.cycle
        if self.lingering:
            return True
        return not self.in_message and (cycle is None or cycle.response_complete)

    def waiting_on_client(self) -> bool:
        """Idle, sending its request, or not reading its response (evictable at the cap)."""
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            return True
        if self.in_body and not self.flow.read_paused:
            return True
        return self.flow.write_paused

    def evict(self) -> None:
        """Make room for a new connection, now (no lingering: the descriptor is what is
        needed): a request being received gets 408."""
        if self.in_message and not self.flow.write_paused and not self.lingering:
            message = "Connection closed to make room for others (the request was too slow)"
            self._reject(408, "REQUEST_TIMEOUT", message, linger=False)
        else:
            self.transport.abort()  # idle, or not reading: nothing to say, nothing to flush

    # -- reading -------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.lingering:
            return
        if self.pool is not None:
            self.pool.touch(self)
        view: bytes | memoryview = data
        while not self.in_body:
            room = self.limits.max_header_bytes - self._head_bytes
            if len(view) <= room:
                self._head_bytes += len(view)
                break
            # Feed what fits: either the head completes within it, or it is too large.
            heads = self.heads
            if not self._feed(memoryview(view)[:room]):
                return
            if self.heads == heads:
                self._reject(431, "HEADERS_TOO_LARGE", "Request header block too large")
                return
            view = memoryview(view)[room:]
            if self.transport.is_closing():
                return
        if not self._feed(view):
            return
        # Timers only for what is left incomplete by this read (most heads and bodies arrive
        # whole): the head's deadline counts from now, the body's silence from its last byte.
        if self.in_body:
            self._last_read = self.loop.time()
            if self._body_timer is None:
                self._body_timer = self.loop.call_at(
                    self._last_read + self.limits.body_timeout_s, self._body_timeout
                )
        elif self.in_message and self._head_timer is None:
            self._head_timer = self.loop.call_later(
                self.limits.header_timeout_s, self._head_timeout
            )

    def _feed(self, data: bytes | memoryview) -> bool:
        """Parse ``data``; False when the request was refused (the connection is closing)."""
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            bad_requests.warning(
                "http_upgrade", "HTTP port: upgrade request from %s not supported", self._peer()
            )
        except httptools.HttpParserError as exc:
            refusal, self._refusal = self._refusal, None
            if refusal is not None:
                self._reject(*refusal)
            else:
                bad_requests.warning(
                    "http_invalid", "invalid HTTP request from %s: %s", self._peer(), truncate(exc)
                )
                self._reject(400, "BAD_REQUEST", "Invalid HTTP request")
            return False
        return True

    # -- parser callbacks ----------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._unset_keepalive_if_required()
        self.in_message = True
        self._url_bytes = self._header_count = 0

    def on_url(self, url: bytes) -> None:
        self._url_bytes += len(url)
        if self._url_bytes > self.limits.max_request_line_bytes:
            self._refusal = (414, "URI_TOO_LONG", "Request target too long")
            raise _Refused
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:  # uvicorn's, with the count
        self._header_count += 1
        if self._header_count > self.limits.max_headers:
            self._refusal = (431, "HEADERS_TOO_LARGE", "Too many request headers")
            raise _Refused
        name = name.lower()
        value = value.rstrip(b" \t")  # llhttp keeps trailing whitespace (RFC 9110 §5.5)
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.heads += 1
        self._head_bytes = 0
        self.in_body = True
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.in_message = self.in_body = False
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        super().on_message_complete()

    # -- timeouts and refusals -----------------------------------------------------------------

    def _head_timeout(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            # A pipelined head behind a response still being made: the server's turn.
            self._head_timer = self.loop.call_later(
                self.limits.header_timeout_s, self._head_timeout
            )
        elif self.in_message:
            self._reject(408, "REQUEST_TIMEOUT", "Request head not received in time")
        else:
            self.transport.close()  # connected and sent nothing

    def _body_timeout(self) -> None:
        self._body_timer = None
        if not self.in_body or self.transport.is_closing():
            return
        now = self.loop.time()
        if self.flow.read_paused:  # the engine is not reading: not the client's silence
            self._last_read = now
        deadline = self._last_read + self.limits.body_timeout_s
        if now < deadline:
            self._body_timer = self.loop.call_at(deadline, self._body_timeout)
        else:
            self._reject(408, "REQUEST_TIMEOUT", "Request body not received in time")

    def _reject(self, status: int, code: str, message: str, *, linger: bool = True) -> None:
        """Answer ``status`` (unless a response is under way) and close the connection
        (after :data:`LINGER_S` with ``linger``)."""
        bad_requests.warning("http_refused", "HTTP %d to %s: %s", status, self._peer(), message)
        cycle = self.cycle
        respond = True
        if cycle is not None and not cycle.response_complete:
            respond = self.in_body and not cycle.response_started  # the refused request's
            cycle.disconnected = True  # its app sees http.disconnect; its sends are dropped
            cycle.message_event.set()
        self._cancel_timers()
        self.in_body = False
        if respond:
            self.transport.write(_error_response(status, code, message))
        if linger:
            self._linger()
        else:
            self.lingering = True
            self.transport.close()

    def _linger(self) -> None:
        """Send what is pending and the end of our side, stop reading, and close after
        :data:`LINGER_S`."""
        transport = self.transport
        self.lingering = True
        if transport.is_closing():
            return
        if transport.can_write_eof():
            transport.write_eof()
            self.flow.pause_reading()
            self.loop.call_later(LINGER_S, transport.close)
        else:
            transport.close()

    def _peer(self) -> str:
        client = self.client
        return f"{client[0]}:{client[1]}" if client else "?"
