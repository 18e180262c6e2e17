"""One worker listener as a raw ASGI application (protocol.md §1.1, §8.1).

WebSocket routes: ``/`` (worker control socket), ``/otel`` (telemetry frames into the
engine's store), ``/ws/channels/{id}?key=…&dir=…`` (data channels, §6). Any other path gets a
plain HTTP 404 (via the ``websocket.http.response`` extension for upgrade requests). An upgrade
carrying an ``Origin`` the listener does not allow gets 403 on every route
(:mod:`iii_asgi.engine.origins`).

On an RBAC or middleware listener, ``/`` and ``/otel`` are authenticated after the upgrade
(§1.3 step 2, §8.1): a failure sends ``{"type":"error","error":{"code":"AUTH_ERROR",
"message"}}`` and a Close, and no worker is created. Channel sockets are not authenticated.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from iii_asgi._asgi import TEXT, send_response

from ...core.budget import SOCKET_ALLOWANCE, FrameAccount
from ...core.channels import serve_channel
from ...core.connection import WorkerConnection
from ...origins import refuse_origin
from ...types import Receive, Scope, Send
from .listener import WorkerListener
from .rbac import AuthError

if TYPE_CHECKING:
    from ...core.engine import EngineCore
    from .session import RbacSession

__all__ = ["EngineApp", "TelemetryEndpoint"]

logger = logging.getLogger("iii_asgi.engine")

_CHANNELS = "/ws/channels/"


class TelemetryEndpoint:
    """Where telemetry goes (protocol.md §1.11): ``ingest`` takes one binary frame sent on a
    worker socket; ``serve`` serves one accepted ``/otel`` WebSocket. ``None`` for either
    drops it."""

    def __init__(
        self,
        ingest: Callable[[bytes], object] | None = None,
        serve: Callable[[Receive, Send], Awaitable[None]] | None = None,
    ) -> None:
        self.ingest = ingest
        self.serve = serve


class EngineApp:
    """``EngineApp(core, telemetry, listener)`` is an ASGI 3 callable serving one worker
    listener of an engine (the main one, from ``core.config``, when ``listener`` is omitted)."""

    def __init__(
        self,
        core: EngineCore,
        telemetry: TelemetryEndpoint | None = None,
        listener: WorkerListener | None = None,
    ) -> None:
        self.core = core
        self.telemetry = telemetry or TelemetryEndpoint()
        if listener is None:
            listener = WorkerListener(core, core.config.listener_configs()[0], "worker")
        self.listener = listener

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            if not self.listener.origins.allows(scope):
                await refuse_origin(send)
                return
            path: str = scope["path"]
            if path == "/":
                await self._worker(scope, receive, send)
            elif path.startswith(_CHANNELS) and "/" not in path[len(_CHANNELS) :]:
                await serve_channel(
                    self.core.channels, path[len(_CHANNELS) :], scope, receive, send
                )
            elif path == "/otel" and self.telemetry.serve is not None:
                await self._otel(scope, receive, send)
            else:
                await send_response(send, 404, b"Not Found", TEXT, "websocket.http.response")
        elif kind == "http":
            await send_response(send, 404, b"Not Found", TEXT)
        elif kind == "lifespan":
            await _lifespan(receive, send)

    async def _accept(
        self, scope: Scope, receive: Receive, send: Send
    ) -> tuple[bool, RbacSession | None]:
        """Accept the upgrade and authenticate it: ``(True, session or None)``, or ``(False,
        None)`` after the AUTH_ERROR frame and Close were sent (§1.3 step 2)."""
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        if self.listener.trusted:
            return True, None
        try:
            return True, await self.listener.authenticate(scope)
        except AuthError as exc:
            logger.info("connection from %s refused: %s", _peer(scope), exc.message)
            frame = {"type": "error", "error": {"code": exc.code, "message": exc.message}}
            with contextlib.suppress(Exception):  # the peer may already be gone
                await send({"type": "websocket.send", "text": json.dumps(frame)})
                await send({"type": "websocket.close", "code": 1000})
            return False, None

    async def _worker(self, scope: Scope, receive: Receive, send: Send) -> None:
        accepted, session = await self._accept(scope, receive, send)
        if not accepted:
            return
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
            session=session,
            send_now=scope.get("extensions", {}).get("iii.send_now"),
        )
        conn.on_telemetry = self.telemetry.ingest  # §1.11: also accepted on `/`
        try:
            await self.core.attach(conn)
            await conn.run(receive, self.core.dispatch, self.core.bad_frame)
        finally:
            await self.core.teardown(conn)
            await conn.stop_writer()
            account.close()

    async def _otel(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``/otel``: the same authentication as ``/`` (§1.11), no worker, then the store."""
        accepted, _session = await self._accept(scope, receive, send)
        if accepted and self.telemetry.serve is not None:
            await self.telemetry.serve(receive, send)


def _peer(scope: Scope) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "?"


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
