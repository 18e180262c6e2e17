"""Free-function helpers of the 0.25 SDK: ``create_channel(client)`` and its async form;
``create_stream(client, name, impl)``; and the channel helpers 0.25 re-exports here
(``ChannelDirection``, ``ChannelItem``, ``extract_channel_refs``, ``is_channel_ref``)."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel

from .channels import Channel, ChannelDirection, ChannelItem, extract_channel_refs
from .client import III
from .protocol import is_channel_ref
from .stream import (
    IStream,
    StreamDeleteInput,
    StreamGetInput,
    StreamListGroupsInput,
    StreamListInput,
    StreamSetInput,
)

__all__ = [
    "ChannelDirection",
    "ChannelItem",
    "create_channel",
    "create_channel_async",
    "create_stream",
    "extract_channel_refs",
    "is_channel_ref",
]


async def create_channel_async(client: III, buffer_size: int | None = None) -> Channel:
    """``await client.create_channel(buffer_size)`` (protocol.md §6.1)."""
    return await client.create_channel(buffer_size)


def create_channel(client: III, buffer_size: int | None = None) -> Channel:
    """Blocking form for sync code (not on the client's loop thread: ``RuntimeError`` there)."""
    loop = client.loop
    if loop is None:
        raise RuntimeError("the client is not connected")
    client._client_loop.refuse_loop_thread("create_channel", "create_channel")
    return asyncio.run_coroutine_threadsafe(client.create_channel(buffer_size), loop).result()


def create_stream(client: III, stream_name: str, stream: IStream[Any]) -> None:
    """Serve the stream ``stream_name`` from ``stream`` (builtins.md §6.1 custom streams).

    Registers ``stream::get(<name>)``, ``stream::set(<name>)``, ``stream::delete(<name>)``,
    ``stream::list(<name>)`` and ``stream::list_groups(<name>)`` on ``client``; the engine then
    forwards those calls (and still emits stream events from the results). ``update`` is not
    registered, as upstream. Emits ``FutureWarning`` (iii-stream is deprecated upstream).
    Raises ``ValueError`` if one of those ids is already registered on ``client``.
    """
    warnings.warn(
        "create_stream is deprecated (iii-stream) and will be removed in an upcoming release",
        FutureWarning,
        stacklevel=2,
    )
    methods: dict[str, tuple[type[BaseModel], Callable[[Any], Awaitable[Any]]]] = {
        "get": (StreamGetInput, stream.get),
        "set": (StreamSetInput, stream.set),
        "delete": (StreamDeleteInput, stream.delete),
        "list": (StreamListInput, stream.list),
        "list_groups": (StreamListGroupsInput, stream.list_groups),
    }
    for op, (model, method) in methods.items():
        client.register_function(f"stream::{op}({stream_name})", _stream_handler(model, method))


def _stream_handler(
    model: type[BaseModel], method: Callable[[Any], Awaitable[Any]]
) -> Callable[[Any], Awaitable[Any]]:
    async def handler(data: Any) -> Any:
        return _plain(await method(model.model_validate(data)))

    return handler


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value
