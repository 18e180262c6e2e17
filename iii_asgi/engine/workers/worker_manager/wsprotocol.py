"""uvicorn's ``websockets-sansio`` protocol with one socket write per event-loop iteration.

The engine sends a worker one frame per invocation; under load many invocations start in the
same iteration (one per HTTP request read), and each frame was its own ``write`` syscall. The
transport is wrapped in :class:`iii._transport.CoalescingTransport`, so what is written during
an iteration leaves as one ``writelines`` at its end. Selected by ``EngineConfig.ws =
"websockets-sansio"`` (the default).
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from iii._transport import CoalescingTransport

__all__ = ["CoalescingWebSocketProtocol", "ws_protocol"]


class CoalescingWebSocketProtocol(WebSocketsSansIOProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        wrapped = CoalescingTransport(transport, self.loop)  # type: ignore[arg-type]
        super().connection_made(wrapped)  # type: ignore[arg-type]


def ws_protocol(name: str) -> str | type[asyncio.Protocol]:
    """The uvicorn ``ws`` setting for ``EngineConfig.ws``: the coalescing class for
    ``websockets-sansio``, else the name as given."""
    return CoalescingWebSocketProtocol if name == "websockets-sansio" else name
