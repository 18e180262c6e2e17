"""Data channels (protocol.md §6)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import websockets
from engine_wire import Wire

from iii_asgi.engine import EngineThread
from tests.helpers import wait_until


async def create(engine: EngineThread, buffer_size: int | None = None) -> dict[str, Any]:
    wire = await Wire.connect(engine.url)
    refs: dict[str, Any] = await wire.result(
        "engine::channels::create", {"buffer_size": buffer_size}, namespace="default"
    )
    return refs


def url(engine: EngineThread, ref: dict[str, Any], direction: str | None = None) -> str:
    return (
        f"{engine.url}/ws/channels/{ref['channel_id']}?key={ref['access_key']}"
        f"&dir={direction or ref['direction']}"
    )


async def test_create_shape(engine: EngineThread) -> None:
    refs = await create(engine)
    writer, reader = refs["writer"], refs["reader"]
    assert writer["direction"] == "write" and reader["direction"] == "read"
    assert writer["channel_id"] == reader["channel_id"]
    assert writer["access_key"] == reader["access_key"]
    assert engine.core.channels.channels[writer["channel_id"]].capacity == 64
    capped = await create(engine, 5000)
    assert engine.core.channels.channels[capped["writer"]["channel_id"]].capacity == 1024


async def test_type_preserving_fifo_writer_first(engine: EngineThread) -> None:
    refs = await create(engine)
    async with websockets.connect(url(engine, refs["writer"])) as writer:
        await writer.send(b"a" * 65536)
        await writer.send(b"b" * 34464)
        await writer.send("hello-text")
    async with websockets.connect(url(engine, refs["reader"])) as reader:
        received = [await reader.recv() for _ in range(3)]
        with pytest.raises(websockets.ConnectionClosedOK):
            await reader.recv()
    assert received == [b"a" * 65536, b"b" * 34464, "hello-text"]


async def test_reader_first_gets_close_at_end(engine: EngineThread) -> None:
    refs = await create(engine)
    async with websockets.connect(url(engine, refs["reader"])) as reader:
        async with websockets.connect(url(engine, refs["writer"])) as writer:
            await writer.send("one")
            assert await reader.recv() == "one"
            await writer.send(b"\x00\x01")
            assert await reader.recv() == b"\x00\x01"
        with pytest.raises(websockets.ConnectionClosedOK):
            await asyncio.wait_for(reader.recv(), 2)


async def test_backpressure_blocks_writer_at_capacity(engine: EngineThread) -> None:
    refs = await create(engine, 4)
    channel = engine.core.channels.channels[refs["writer"]["channel_id"]]
    async with websockets.connect(url(engine, refs["writer"])) as writer:
        for i in range(10):
            await writer.send(f"m{i}")
        await asyncio.sleep(0.2)
        assert len(channel.items) == 4  # the rest waits in the socket, not in the engine
        async with websockets.connect(url(engine, refs["reader"])) as reader:
            assert [await reader.recv() for _ in range(10)] == [f"m{i}" for i in range(10)]


async def test_single_attach_per_end(engine: EngineThread) -> None:
    refs = await create(engine)
    async with websockets.connect(url(engine, refs["writer"])) as writer:
        second = await websockets.connect(url(engine, refs["writer"]))
        await asyncio.wait_for(second.wait_closed(), 2)
        async with websockets.connect(url(engine, refs["reader"])) as reader:
            extra = await websockets.connect(url(engine, refs["reader"]))
            with pytest.raises(websockets.ConnectionClosedOK):
                await asyncio.wait_for(extra.recv(), 2)
            await writer.send("still works")
            assert await reader.recv() == "still works"


async def test_bad_key_or_id_is_404_and_bad_query_400(engine: EngineThread) -> None:
    refs = await create(engine)
    ref = refs["reader"]
    for target in (
        f"{engine.url}/ws/channels/{ref['channel_id']}?key=wrong&dir=read",
        f"{engine.url}/ws/channels/nope?key={ref['access_key']}&dir=read",
    ):
        with pytest.raises(websockets.InvalidStatus) as info:
            await websockets.connect(target)
        assert info.value.response.status_code == 404
        assert info.value.response.body == b"Channel not found"
    for target in (
        f"{engine.url}/ws/channels/{ref['channel_id']}?dir=read",
        f"{engine.url}/ws/channels/{ref['channel_id']}?key={ref['access_key']}&dir=both",
    ):
        with pytest.raises(websockets.InvalidStatus) as info:
            await websockets.connect(target)
        assert info.value.response.status_code == 400
    # the key grants either direction regardless of the ref's direction (§6.1)
    async with websockets.connect(url(engine, ref, "write")) as ws:
        await ws.send("x")


async def test_sweep_deletes_stale_half_attached_channels(
    engine_factory: Callable[..., EngineThread],
) -> None:
    engine = engine_factory(channel_ttl_s=0.2, channel_sweep_interval_s=0.1)
    refs = await create(engine)
    untouched = await create(engine)
    full = await create(engine)
    async with websockets.connect(url(engine, refs["reader"])) as reader:
        fw = await websockets.connect(url(engine, full["writer"]))
        fr = await websockets.connect(url(engine, full["reader"]))
        with pytest.raises(websockets.ConnectionClosedOK):
            await asyncio.wait_for(reader.recv(), 3)  # writer never came: Close
    channels = engine.core.channels.channels
    assert refs["reader"]["channel_id"] not in channels
    # created a moment later: on a loaded machine a later sweep may be the one deleting it
    await wait_until(lambda: untouched["reader"]["channel_id"] not in channels)
    assert full["reader"]["channel_id"] in channels  # fully attached: left to finish
    with pytest.raises(websockets.InvalidStatus):
        await websockets.connect(url(engine, untouched["writer"]))
    await fw.close()
    await fr.close()
