"""Serving an ASGI app with real uvicorn on an ephemeral port, on the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import uvicorn

__all__ = ["UvicornServer", "serve"]


class UvicornServer(uvicorn.Server):
    """uvicorn without signal handlers (pytest owns them)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Any:
        yield

    async def serve(self, sockets: Any = None) -> None:
        try:
            await super().serve(sockets)
        except SystemExit as exc:  # a failed lifespan startup
            raise RuntimeError(f"uvicorn did not start (exit status {exc.code})") from None


@contextlib.asynccontextmanager
async def serve(app: Any, **options: Any) -> AsyncIterator[str]:
    """Run ``app`` under uvicorn on 127.0.0.1:0 (lifespan on); yields ``http://127.0.0.1:<port>``.
    Raises ``RuntimeError`` when the server does not start (e.g. a failed lifespan startup)."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan="on", **options
    )
    server = UvicornServer(config)
    task = asyncio.ensure_future(server.serve())
    while not server.started:
        if task.done():
            await asyncio.gather(task, return_exceptions=True)
            raise RuntimeError("uvicorn did not start")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.gather(task, return_exceptions=True)
