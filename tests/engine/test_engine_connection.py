"""Connection-level behaviour: handshake, framing, keepalive, bad input (protocol.md §1)."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid

import httpx
import pytest
import websockets
from engine_wire import Wire

from iii_asgi.engine import EngineThread


async def test_workerregistered_first_without_features(engine: EngineThread) -> None:
    wire = await Wire.connect(engine.url)
    assert set(wire.hello) == {"type", "worker_id", "reattach_token"}
    uuid.UUID(wire.worker_id)
    uuid.UUID(wire.token)
    other = await Wire.connect(engine.url)
    assert other.worker_id != wire.worker_id
    await wire.close()
    await other.close()


async def test_json_ping_pong_and_ws_ping(engine: EngineThread) -> None:
    wire = await Wire.connect(engine.url)
    await wire.send({"type": "ping"})
    assert await wire.recv() == {"type": "pong"}
    await wire.send({"type": "pong"})  # ignored
    await wire.silent(0.1)
    latency = await asyncio.wait_for(await wire.ws.ping(b"abc"), 2)
    assert latency >= 0
    await wire.close()


async def test_malformed_frames_keep_the_connection(
    engine: EngineThread, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "iii_asgi.engine")
    wire = await Wire.connect(engine.url)
    for bad in [
        "not json",
        "[1,2]",
        '{"no":"type"}',
        '{"type":"registerfunction"}',
        '{"type":"registerfunction","id":5}',
        '{"type":"nonsense","x":1}',
        '{"type":"observe","id":"x"}',
        "   ",
    ]:
        await wire.send(bad)
    await wire.sync()  # still served
    text = caplog.text
    assert "not valid JSON" in text
    assert "missing required field 'id'" in text
    assert "'nonsense'" in text
    await wire.close()


async def test_malformed_invoke_with_id_gets_deserialization_error(engine: EngineThread) -> None:
    wire = await Wire.connect(engine.url)
    await wire.send({"type": "invokefunction", "function_id": 42, "invocation_id": "bad-1"})
    frame = await wire.recv_type("invocationresult")
    assert frame["invocation_id"] == "bad-1"
    assert frame["error"]["code"] == "deserialization_error"
    assert "function_id" in frame["error"]["message"]
    await wire.send(
        {
            "type": "invokefunction",
            "function_id": "x",
            "invocation_id": "bad-2",
            "action": {"type": "later"},
        }
    )
    frame = await wire.recv_type("invocationresult")
    assert frame["error"]["code"] == "deserialization_error"
    await wire.sync()
    await wire.close()


async def test_binary_json_and_telemetry_frames(engine: EngineThread) -> None:
    wire = await Wire.connect(engine.url)
    await wire.ws.send(b'OTLP{"resourceSpans":[]}')
    await wire.ws.send(b"MTRC{}")
    await wire.ws.send(json.dumps({"type": "ping"}).encode())
    assert await wire.recv() == {"type": "pong"}
    await wire.close()


async def test_otel_socket_accepts_and_discards(engine: EngineThread) -> None:
    async with websockets.connect(engine.url + "/otel") as ws:
        await ws.send(b"OTLP{}")
        await ws.send("text is ignored")
        await asyncio.wait_for(await ws.ping(), 2)
    wire = await Wire.connect(engine.url)
    listed = await wire.result("engine::workers::list", {})
    assert [w["runtime"] for w in listed["workers"]] == ["engine"]  # /otel is no worker
    await wire.close()


async def test_unknown_paths_are_404(engine: EngineThread) -> None:
    with pytest.raises(websockets.InvalidStatus) as info:
        await websockets.connect(engine.url + "/nope")
    assert info.value.response.status_code == 404
    async with httpx.AsyncClient() as client:
        response = await client.get(engine.url.replace("ws://", "http://") + "/nope")
    assert response.status_code == 404


async def test_large_fragmented_message(engine: EngineThread) -> None:
    caller = await Wire.connect(engine.url)
    worker = await Wire.connect(engine.url, name="big")
    await worker.send({"type": "registerfunction", "id": "big::echo"})
    await worker.sync()
    blob = "x" * (20 * 1024 * 1024)
    text = json.dumps(
        {
            "type": "invokefunction",
            "function_id": "big::echo",
            "invocation_id": "big-1",
            "data": {"blob": blob},
        }
    )
    fragments = [text[i : i + (1 << 20)] for i in range(0, len(text), 1 << 20)]
    await caller.ws.send(iter(fragments))  # a fragmented text message
    call = await worker.recv_type("invokefunction", timeout=20)
    assert len(call["data"]["blob"]) == len(blob)
    await worker.send(
        {
            "type": "invocationresult",
            "invocation_id": "big-1",
            "function_id": "big::echo",
            "result": call["data"]["blob"],
        }
    )
    result = await caller.recv_type("invocationresult", timeout=20)
    assert result["result"] == blob
    await caller.sync()
    await caller.close()
    await worker.close()


async def test_absent_data_reads_as_null(engine: EngineThread) -> None:
    caller = await Wire.connect(engine.url)
    worker = await Wire.connect(engine.url, name="n")
    await worker.send({"type": "registerfunction", "id": "n::f"})
    await worker.sync()
    inv = await caller.invoke("n::f")  # no "data" key
    call = await worker.serve_one()
    assert call["data"] is None and call["invocation_id"] == inv
    assert (await caller.recv_type("invocationresult"))["result"] is None
    await caller.close()
    await worker.close()
