"""Joining the app's own lifespan (ASGI lifespan protocol) without replacing it.

The app's lifespan runs as it would alone; the bridge sits between it and the server:

- startup: the app's startup runs first (its ``lifespan.startup.complete`` is held back), then
  ``on_startup`` (connect and register). If that fails, the app is told to shut down (so its
  resources are released) and the server gets ``lifespan.startup.failed`` with the reason.
- shutdown: ``on_shutdown`` (unregister, drain, close) runs when the server's
  ``lifespan.shutdown`` arrives and before the app sees it, so the app's shutdown runs last.
- an app that does not speak lifespan (raises or returns before reading ``lifespan.startup``)
  gets the bridge's own minimal lifespan instead.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["join_lifespan"]

logger = logging.getLogger("iii_asgi.bridge")

Hook = Callable[[], Awaitable[None]]


async def join_lifespan(
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    on_startup: Hook,
    on_shutdown: Hook,
) -> None:
    """Run ``app``'s lifespan with ``on_startup`` after its startup and ``on_shutdown`` before
    its shutdown (see the module docstring)."""
    failure: str | None = None
    started_app = False  # the app read lifespan.startup

    async def app_receive() -> Message:
        nonlocal started_app
        if failure is not None:
            return {"type": "lifespan.shutdown"}
        message = await receive()
        if message["type"] == "lifespan.startup":
            started_app = True
        elif message["type"] == "lifespan.shutdown":
            await _quietly(on_shutdown)
        return message

    async def app_send(message: Message) -> None:
        nonlocal failure
        kind = message["type"]
        if kind == "lifespan.startup.complete" and failure is None:
            try:
                await on_startup()
            except Exception as exc:
                failure = f"iii bridge: {type(exc).__name__}: {exc}"
                logger.error("%s", failure)
                return  # the app's next receive() asks it to shut down
        elif failure is not None and kind in (
            "lifespan.shutdown.complete",
            "lifespan.shutdown.failed",
        ):
            await send({"type": "lifespan.startup.failed", "message": failure})
            return
        await send(message)

    try:
        await app(scope, app_receive, app_send)
    except Exception:
        if started_app:
            raise
        logger.info("the app does not handle lifespan: the iii bridge runs its own")
    else:
        if started_app:
            return
    await _own_lifespan(receive, send, on_startup, on_shutdown)


async def _own_lifespan(receive: Receive, send: Send, on_startup: Hook, on_shutdown: Hook) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                await on_startup()
            except Exception as exc:
                await send({"type": "lifespan.startup.failed", "message": f"iii bridge: {exc}"})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await _quietly(on_shutdown)
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _quietly(hook: Hook) -> None:
    try:
        await hook()
    except Exception:
        logger.exception("iii bridge shutdown failed")
