"""Helpers for the HTTP trigger tests: an SDK worker on the test's loop, route readiness."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

import iii
from iii_asgi.engine import EngineThread


async def routed(engine: EngineThread, count: int = 1, timeout: float = 5.0) -> None:
    """Wait until the engine has ``count`` HTTP routes mounted (registrations carry no ack)."""
    app = engine.engine.http_app
    assert app is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(app.router) != count:
        if loop.time() > deadline:
            raise AssertionError(f"{len(app.router)} routes mounted, expected {count}")
        await asyncio.sleep(0.005)


@asynccontextmanager
async def worker(engine: EngineThread) -> AsyncIterator[iii.III]:
    """Our SDK, attached to the test's event loop."""
    client = iii.III(engine.url)
    await client.connect()
    try:
        yield client
    finally:
        await client.shutdown_async()


def route(
    client: iii.III,
    function_id: str,
    handler: Any,
    api_path: str,
    method: str = "GET",
    **config: Any,
) -> Any:
    """Register ``handler`` as ``function_id`` and bind it to ``method api_path``."""
    client.register_function(function_id, handler)
    return client.register_trigger(
        {
            "type": "http",
            "function_id": function_id,
            "config": {"api_path": api_path, "http_method": method, **config},
        }
    )


async def get_routed(
    engine: EngineThread, function_id: str, handler: Any, api_path: str
) -> httpx.Response:
    """Serve ``handler`` as ``GET api_path`` from a fresh worker, GET it once, and return the
    response once that worker has shut down."""
    async with worker(engine) as client:
        route(client, function_id, handler, api_path)
        await routed(engine)
        async with http(engine) as c:
            return await c.get(api_path)


@asynccontextmanager
async def http(engine: EngineThread) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=engine.http_url, timeout=10) as client:
        yield client
