"""The attached loop model (seed 004): ``III(url)`` + ``await connect()`` on the caller's loop."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

import iii
from tests.helpers import acall_until_found as call_until_found

#: Every test here runs over the WebSocket and over the in-process transport.
pytestmark = pytest.mark.usefixtures("transport")


async def test_handlers_run_on_the_callers_loop(engine: Any) -> None:
    loop = asyncio.get_running_loop()
    client = iii.III(engine.url)
    seen: list[bool] = []

    async def where(data: Any) -> bool:
        seen.append(asyncio.get_running_loop() is loop)
        return True

    client.register_function("loop::where", where)  # before connect: replayed on connect
    await client.connect()
    try:
        assert client.loop is loop
        assert await call_until_found(client, {"function_id": "loop::where"}) is True
        assert seen == [True]
        # seed 004 names
        assert await client.call("loop::where", {}) is True
        client.call_void("loop::where", {})
        for _ in range(100):
            if len(seen) == 3:
                break
            await asyncio.sleep(0.01)
        assert len(seen) == 3
        with pytest.raises(RuntimeError, match="event loop thread"):
            client.trigger({"function_id": "loop::where"})
    finally:
        await client.shutdown_async()


async def test_connect_to_nothing_fails_loudly(free_port: int) -> None:
    client = iii.III(f"ws://127.0.0.1:{free_port}")
    with pytest.raises(ConnectionError, match="could not connect"):
        await client.connect(timeout=0.5)
    assert client.get_connection_state() != "connected"


async def test_list_functions_and_workers(engine: Any) -> None:
    client = iii.III(engine.url, iii.InitOptions(worker_name="lister"))
    client.register_function("list::me", lambda d: d, description="listed")
    await client.connect()
    try:
        await call_until_found(client, {"function_id": "list::me"})
        functions = await client.list_functions()
        assert any(f.function_id == "list::me" and f.description == "listed" for f in functions)
        workers = await client.list_workers()
        assert any(w.name == "lister" for w in workers)
    finally:
        await client.shutdown_async()


async def test_channels_between_functions(engine: Any) -> None:
    client = iii.III(engine.url)
    received: dict[str, Any] = {}

    async def consume(data: dict[str, Any]) -> int:
        reader = data["input"]
        assert isinstance(reader, iii.ChannelReader)
        texts: list[str] = []
        reader.on_message(texts.append)
        sizes = [len(chunk) async for chunk in reader]
        received.update(sizes=sizes, texts=texts)
        return sum(sizes)

    client.register_function("chan::consume", consume)
    await client.connect()
    try:
        channel = await client.create_channel()
        call = asyncio.ensure_future(
            call_until_found(
                client,
                {"function_id": "chan::consume", "payload": {"input": channel.reader_ref}},
            )
        )
        await channel.writer.write(b"x" * 100_000)
        await channel.writer.send_message("hello-text")
        await channel.writer.close()
        assert await asyncio.wait_for(call, 10) == 100_000
        assert received["sizes"] == [65536, 34464]
        assert received["texts"] == ["hello-text"]
    finally:
        await client.shutdown_async()


async def test_channel_write_rejects_non_bytes(engine: Any) -> None:
    client = iii.III(engine.url)
    await client.connect()
    try:
        channel = await iii.helpers.create_channel_async(client, buffer_size=4)
        with pytest.raises(TypeError, match="send_message"):
            await channel.writer.write({"data": 1})  # type: ignore[arg-type]
    finally:
        await client.shutdown_async()


async def test_bad_channel_key_is_a_clear_error(engine: Any) -> None:
    reader = iii.ChannelReader(
        engine.url, {"channel_id": "nope", "access_key": "bad", "direction": "read"}
    )
    with pytest.raises(iii.channels.ChannelError, match="404"):
        await reader.read_all()


class Item(BaseModel):
    name: str
    price: float


async def test_formats_from_type_hints_and_explicit(engine: Any) -> None:
    client = iii.III(engine.url)

    async def price(item: Item) -> float:
        return item.price

    client.register_function("fmt::hinted", price, description="typed")
    client.register_function(
        "fmt::explicit", lambda d: d, request_format={"type": "object", "title": "Mine"}
    )
    await client.connect()
    try:
        await call_until_found(
            client, {"function_id": "fmt::hinted", "payload": {"name": "a", "price": 2.5}}
        )
        info = await client.trigger_async(
            {"function_id": "engine::functions::info", "payload": {"function_id": "fmt::hinted"}}
        )
        assert info["request_schema"]["properties"]["price"]["type"] == "number"
        assert info["response_schema"] == {"type": "number"}
        explicit = await call_until_found(
            client,
            {"function_id": "engine::functions::info", "payload": {"function_id": "fmt::explicit"}},
        )
        assert explicit["request_schema"] == {"type": "object", "title": "Mine"}
    finally:
        await client.shutdown_async()


async def test_shutdown_async_leaves_no_task(engine: Any) -> None:
    before = asyncio.all_tasks()
    client = iii.III(engine.url)
    client.register_function("t::fn", lambda d: d)
    await client.connect()
    await call_until_found(client, {"function_id": "t::fn"})
    await client.shutdown_async()
    await asyncio.sleep(0)
    assert asyncio.all_tasks() - before == set()
    assert client.get_connection_state() == "disconnected"
