"""The engine as a raw ASGI application (protocol.md §1.1).

WebSocket routes: ``/`` (worker control socket), ``/otel`` (telemetry frames into the
engine's store, :mod:`.otel`), ``/ws/channels/{id}?key=…&dir=…`` (data channels, §6). Any other
path gets a plain HTTP 404 (via the ``websocket.http.response`` extension for upgrade requests).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from iii_asgi._asgi import TEXT, send_response

from ...core.budget import SOCKET_ALLOWANCE, FrameAccount
from ...core.channels import serve_channel
from ...core.connection import WorkerConnection
from ...types import Receive, Scope, Send

if TYPE_CHECKING:
    from ...core.engine import EngineCore

__all__ = ["EngineApp", "TelemetryEndpoint"]

logger = logging.getLogger("iii_asgi.engine")

_CHANNELS = "/ws/channels/"


class TelemetryEndpoint:
    """Where telemetry goes (protocol.md §1.11): ``ingest`` takes one binary frame sent on a
    worker socket; ``serve`` serves one ``/otel`` WebSocket. ``None`` for either drops it."""

    def __init__(
        self,
        ingest: Callable[[bytes], object] | None = None,
        serve: Callable[[Receive, Send], Awaitable[None]] | None = None,
    ) -> None:
        self.ingest = ingest
        self.serve = serve


class EngineApp:
    """``EngineApp(core, telemetry)`` is an ASGI 3 callable serving the worker listener of one
    engine."""

    def __init__(self, core: EngineCore, telemetry: TelemetryEndpoint | None = None) -> None:
        self.core = core
        self.telemetry = telemetry or TelemetryEndpoint()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            path: str = scope["path"]
            if path == "/":
                await self._worker(scope, receive, send)
            elif path.startswith(_CHANNELS) and "/" not in path[len(_CHANNELS) :]:
                await serve_channel(
                    self.core.channels, path[len(_CHANNELS) :], scope, receive, send
                )
            elif path == "/otel" and self.telemetry.serve is not None:
                await self.telemetry.serve(receive, send)
            else:
                await send_response(send, 404, b"Not Found", TEXT, "websocket.http.response")
        elif kind == "http":
            await send_response(send, 404, b"Not Found", TEXT)
        elif kind == "lifespan":
            await _lifespan(receive, send)

    async def _worker(self, scope: Scope, receive: Receive, send: Send) -> None:
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        client = scope.get("client")
        config = self.core.config
        account = scope.get("extensions", {}).get("iii.frames")  # set by our ws protocol
        if account is None:
            account = FrameAccount(self.core.frames, SOCKET_ALLOWANCE)
        conn = WorkerConnection(
            send,
            queue_size=config.outbound_queue_size,
            queue_bytes=config.outbound_queue_bytes,
            account=account,
            ip_address=client[0] if client else None,
        )
        conn.on_telemetry = self.telemetry.ingest  # §1.11: also accepted on `/`
        try:
            await self.core.attach(conn)
            await conn.run(receive, self.core.dispatch, self.core.bad_frame)
        finally:
            await self.core.teardown(conn)
            await conn.stop_writer()
            account.close()


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
