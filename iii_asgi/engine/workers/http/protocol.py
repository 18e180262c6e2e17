"""uvicorn's httptools protocol with one ``write`` per loop iteration instead of one per ASGI
``send``.

uvicorn writes a response head as soon as ``http.response.start`` is sent and the body at the
next ``send``: two ``write`` syscalls, each a trip through the TCP stack, for every buffered
response. Here the transport is wrapped so that what the protocol writes during one iteration
of the event loop goes out as a single ``writelines`` at the end of it (head and body together,
and the responses of several pipelined requests). Nothing waits longer than that iteration, so
streamed bodies still leave as they are produced; ``close()`` sends what is pending first.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from iii._transport import CoalescingTransport

__all__ = ["HttpProtocol"]


class HttpProtocol(HttpToolsProtocol):
    """The HTTP trigger server's protocol class (``uvicorn.Config(http=HttpProtocol)``)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
