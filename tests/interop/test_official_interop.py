"""Our SDK and the official ``iii-sdk==0.25.0`` on the same embedded engine, both directions.

The official client runs in its own venv as a subprocess (``tests/official.py``); our client
runs in the test process.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
from collections.abc import Callable
from typing import Any

import pytest

import iii
from iii import IIIInvocationError, InitOptions
from iii_asgi.engine import EngineThread
from tests.helpers import WAIT, acall_until_found
from tests.official import run_official
from tests.processes import PATIENCE

pytestmark = pytest.mark.interop


async def call_until_found(
    client: iii.III, request: dict[str, Any], timeout: float = PATIENCE
) -> Any:
    """The official worker starts in a subprocess: allow it more time to register."""
    return await acall_until_found(client, request, timeout)


OFFICIAL_WORKER = textwrap.dedent(
    """
    import asyncio, time
    from iii import register_worker, InitOptions

    client = register_worker(options=InitOptions(worker_name="official-worker"))

    def add(data):
        return data["a"] + data["b"]

    async def greet(data):
        return {"hello": data["name"], "caller_seen": "_caller_worker_id" in data}

    def boom(data):
        raise RuntimeError("official kaboom")

    async def read_channel(data):
        reader = data["input"]
        texts = []
        reader.on_message(texts.append)
        body = await reader.read_all()
        return {"size": len(body), "texts": texts, "head": body[:5].decode()}

    async def write_channel(data):
        writer = data["output"]
        await writer.write(b"y" * 70000)
        writer.send_message("from-official")
        await writer.close_async()
        return "written"

    client.register_function("official::add", add)
    client.register_function("official::greet", greet)
    client.register_function("official::boom", boom)
    client.register_function("official::read_channel", read_channel)
    client.register_function("official::write_channel", write_channel)
    print("READY", flush=True)
    while True:
        time.sleep(1)
    """
)


async def test_our_sdk_calls_official_functions(engine: EngineThread) -> None:
    with run_official(OFFICIAL_WORKER, engine.url) as official:
        official.wait_for("READY")
        client = iii.III(engine.url, InitOptions(worker_name="ours"))
        await client.connect()
        try:
            add = {"function_id": "official::add", "payload": {"a": 2, "b": 40}}
            assert await call_until_found(client, add) == 42
            greeting = await client.trigger_async(
                {"function_id": "official::greet", "payload": {"name": "ours"}}
            )
            assert greeting == {"hello": "ours", "caller_seen": True}
            with pytest.raises(IIIInvocationError) as info:
                await client.trigger_async({"function_id": "official::boom", "payload": {}})
            assert info.value.code == "invocation_failed"
            assert info.value.message == "official kaboom"
            assert "RuntimeError" in (info.value.stacktrace or "")
            assert (
                await client.trigger_async(
                    {
                        "function_id": "official::add",
                        "payload": {"a": 1, "b": 1},
                        "action": iii.TriggerAction.Void(),
                    }
                )
                is None
            )
        finally:
            await client.shutdown_async()


OFFICIAL_CALLER = textwrap.dedent(
    """
    import json
    from iii import register_worker, TriggerAction, InitOptions
    from iii.errors import InvocationError

    client = register_worker(options=InitOptions(worker_name="official-caller"))

    def attempt(request):
        try:
            return {"ok": client.trigger(request)}
        except InvocationError as exc:
            return {"code": exc.code, "message": exc.message, "stack": bool(exc.stacktrace)}

    print("SYNC " + json.dumps(attempt({"function_id": "ours::mul", "payload": {"a": 6, "b": 7}})))
    print("ASYNC " + json.dumps(attempt({"function_id": "ours::hello", "payload": {"n": "o"}})))
    print("VOID " + json.dumps(attempt({"function_id": "ours::record", "payload": {"v": 1},
                                         "action": TriggerAction.Void()})))
    print("FAIL " + json.dumps(attempt({"function_id": "ours::fail", "payload": {}})))
    print("MISSING " + json.dumps(attempt({"function_id": "ours::missing", "payload": {}})))
    client.shutdown()
    """
)


async def test_official_sdk_calls_our_functions(engine: EngineThread) -> None:
    client = iii.III(engine.url, InitOptions(worker_name="ours-worker"))
    recorded = asyncio.Event()

    def fail(data: Any) -> None:
        raise KeyError("missing thing")

    async def record(data: Any) -> None:
        recorded.set()

    client.register_function("ours::mul", lambda d: d["a"] * d["b"])
    client.register_function("ours::hello", _async_hello)
    client.register_function("ours::record", record)
    client.register_function("ours::fail", fail)
    await client.connect()
    await call_until_found(client, {"function_id": "ours::mul", "payload": {"a": 1, "b": 1}})
    try:
        with run_official(OFFICIAL_CALLER, engine.url) as official:
            lines = {}
            for label in ("SYNC", "ASYNC", "VOID", "FAIL", "MISSING"):
                line = await asyncio.to_thread(official.wait_for, label)
                lines[label] = json.loads(line.split(" ", 1)[1])
        assert lines["SYNC"] == {"ok": 42}
        assert lines["ASYNC"] == {"ok": {"hello": "o"}}
        assert lines["VOID"] == {"ok": None}
        await asyncio.wait_for(recorded.wait(), WAIT)
        assert lines["FAIL"]["code"] == "invocation_failed"
        assert "missing thing" in lines["FAIL"]["message"] and lines["FAIL"]["stack"]
        assert lines["MISSING"]["code"] == "function_not_found"
    finally:
        await client.shutdown_async()


async def _async_hello(data: dict[str, str]) -> dict[str, str]:
    return {"hello": data["n"]}


async def test_channels_both_directions(engine: EngineThread) -> None:
    with run_official(OFFICIAL_WORKER, engine.url) as official:
        official.wait_for("READY")
        client = iii.III(engine.url)
        await client.connect()
        try:
            # ours writes, official reads
            channel = await client.create_channel()
            call = asyncio.ensure_future(
                call_until_found(
                    client,
                    {
                        "function_id": "official::read_channel",
                        "payload": {"input": channel.reader_ref},
                    },
                )
            )
            await channel.writer.write(b"hello" + b"x" * 99_995)
            await channel.writer.send_message("from-ours")
            await channel.writer.close()
            result = await asyncio.wait_for(call, WAIT)
            assert result == {"size": 100_000, "texts": ["from-ours"], "head": "hello"}

            # official writes, ours reads
            channel = await client.create_channel()
            texts: list[str] = []
            channel.reader.on_message(texts.append)
            written = asyncio.ensure_future(
                client.trigger_async(
                    {
                        "function_id": "official::write_channel",
                        "payload": {"output": channel.writer_ref},
                    }
                )
            )
            body = await asyncio.wait_for(channel.reader.read_all(), WAIT)
            assert await written == "written"
            assert body == b"y" * 70000 and texts == ["from-official"]
        finally:
            await client.shutdown_async()


OFFICIAL_CHANNEL_CALLER = textwrap.dedent(
    """
    import asyncio, json
    from iii import register_worker, InitOptions
    from iii.helpers import create_channel_async

    client = register_worker(options=InitOptions(worker_name="official-channel-caller"))

    async def main():
        channel = await create_channel_async(client)
        payload = {"input": channel.reader_ref.model_dump()}
        call = asyncio.ensure_future(
            client.trigger_async({"function_id": "ours::consume", "payload": payload}))
        await channel.writer.write(b"z" * 150000)
        await channel.writer.close_async()
        print("RESULT " + json.dumps(await call), flush=True)

    asyncio.run(main())
    client.shutdown()
    """
)


async def test_official_channel_into_our_handler(engine: EngineThread) -> None:
    client = iii.III(engine.url)

    async def consume(data: dict[str, Any]) -> dict[str, Any]:
        reader = data["input"]
        assert isinstance(reader, iii.ChannelReader)
        sizes = [len(chunk) async for chunk in reader]
        return {"total": sum(sizes), "frames": len(sizes)}

    client.register_function("ours::consume", consume)
    await client.connect()
    try:
        with run_official(OFFICIAL_CHANNEL_CALLER, engine.url) as official:
            line = await asyncio.to_thread(official.wait_for, "RESULT")
        assert json.loads(line.split(" ", 1)[1]) == {"total": 150_000, "frames": 3}
    finally:
        await client.shutdown_async()


async def test_official_worker_reconnects_after_engine_restart(
    engine_factory: Callable[..., EngineThread],
) -> None:
    engine = engine_factory()
    port = int(engine.url.rsplit(":", 1)[1])
    with run_official(OFFICIAL_WORKER, engine.url) as official:
        official.wait_for("READY")
        client = iii.III(
            engine.url,
            InitOptions(reconnection_config=iii.ReconnectionConfig(initial_delay_ms=50)),
        )
        await client.connect()
        try:
            add = {"function_id": "official::add", "payload": {"a": 1, "b": 2}}
            assert await call_until_found(client, add) == 3
            await asyncio.to_thread(engine.stop)
            await asyncio.to_thread(engine_factory, port=port)
            # the official SDK reconnects with ~1 s backoff and replays its functions
            assert await call_until_found(client, add) == 3
        finally:
            await client.shutdown_async()
