"""Free-function helpers of the 0.25 SDK: ``create_channel(client)`` and its async form."""

from __future__ import annotations

import asyncio

from .channels import Channel
from .client import III

__all__ = ["create_channel", "create_channel_async"]


async def create_channel_async(client: III, buffer_size: int | None = None) -> Channel:
    """``await client.create_channel(buffer_size)`` (protocol.md §6.1)."""
    return await client.create_channel(buffer_size)


def create_channel(client: III, buffer_size: int | None = None) -> Channel:
    """Blocking form for sync code (not on the client's loop thread: ``RuntimeError`` there)."""
    loop = client.loop
    if loop is None:
        raise RuntimeError("the client is not connected")
    client._refuse_loop_thread("create_channel", "create_channel")
    return asyncio.run_coroutine_threadsafe(client.create_channel(buffer_size), loop).result()
