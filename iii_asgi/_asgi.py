"""ASGI types and a plain-response helper, shared by the engine's apps and :class:`WorkerApp`
(ASGI 3.0 spec). Importing it does not import the engine."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["TEXT", "ASGIApp", "Message", "Receive", "Scope", "Send", "send_response"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: ``content-type`` of a plain-text response.
TEXT = b"text/plain; charset=utf-8"


async def send_response(
    send: Send, status: int, body: bytes, content_type: bytes, prefix: str = "http.response"
) -> None:
    """Send one complete response (``content-type``, ``content-length``, then the body).

    ``prefix`` is ``"http.response"`` for an HTTP scope, or ``"websocket.http.response"`` to
    refuse a WebSocket upgrade with a plain HTTP response (the ASGI WebSocket Denial Response
    extension, which uvicorn implements)."""
    await send(
        {
            "type": f"{prefix}.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": f"{prefix}.body", "body": body})
