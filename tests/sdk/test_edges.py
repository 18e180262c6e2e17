"""Edge cases of the SDK: trigger-type providers, discovery, env handling, bad frames, sizes."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets
from websockets.asyncio.server import ServerConnection, serve

import iii
from iii import IIIInvocationError, InitOptions, TriggerConfig, TriggerHandler
from iii_asgi.engine import EngineThread
from tests.helpers import acall_until_found as call_until_found
from tests.helpers import wait_until

#: Every test here runs over the WebSocket and over the in-process transport.
pytestmark = pytest.mark.usefixtures("transport")


class RecordingProvider(TriggerHandler):
    def __init__(self) -> None:
        self.registered: list[TriggerConfig] = []
        self.unregistered: list[TriggerConfig] = []
        self.changed = asyncio.Event()

    async def register_trigger(self, config: TriggerConfig) -> None:
        if (config.config or {}).get("reject"):
            raise ValueError("bad config")
        self.registered.append(config)
        self.changed.set()

    async def unregister_trigger(self, config: TriggerConfig) -> None:
        self.unregistered.append(config)
        self.changed.set()


async def test_custom_trigger_type_provider_flow(engine: EngineThread, caplog: Any) -> None:
    provider_client = iii.III(engine.url, InitOptions(worker_name="provider"))
    user = iii.III(engine.url, InitOptions(worker_name="user"))
    provider = RecordingProvider()
    fired: list[Any] = []

    async def on_fire(data: Any) -> str:
        fired.append(data)
        return "handled"

    ref = provider_client.register_trigger_type({"id": "webhook", "description": "hooks"}, provider)
    assert ref.id == "webhook"
    user.register_function("user::on_hook", on_fire)
    await provider_client.connect()
    await user.connect()
    try:
        trigger = user.register_trigger(
            {
                "type": "webhook",
                "function_id": "user::on_hook",
                "config": {"path": "/a"},
                "metadata": {"tag": "t"},
            }
        )
        await wait_until(lambda: provider.registered)
        config = provider.registered[0]
        assert (config.id, config.function_id, config.config) == (
            trigger.id,
            "user::on_hook",
            {"path": "/a"},
        )
        # firing is an ordinary call from the provider
        result = await call_until_found(
            provider_client,
            {
                "function_id": config.function_id,
                "payload": {"event": 1},
                "metadata": config.metadata,
            },
        )
        assert result == "handled" and fired[0]["event"] == 1
        trigger.unregister()
        await wait_until(lambda: provider.unregistered)
        # the provider receives the whole config it accepted, not just the id
        assert provider.unregistered[0].function_id == "user::on_hook"
        # a refusing provider: the registering worker logs the failure
        user.register_trigger(
            {"type": "webhook", "function_id": "user::on_hook", "config": {"reject": True}}
        )
        await wait_until(lambda: "Trigger registration failed" in caplog.text)
        assert "bad config" in caplog.text
        provider_client.unregister_trigger_type({"id": "webhook"})
    finally:
        await user.shutdown_async()
        await provider_client.shutdown_async()


async def test_seed_004_trigger_type_signature(engine: EngineThread) -> None:
    client = iii.III(engine.url)
    provider = RecordingProvider()
    client.register_trigger_type("legacy-type", "seed 004 form", provider)
    client.register_function("legacy::fn", lambda d: d)
    await client.connect()
    try:
        client.register_trigger("legacy-type", "legacy::fn", {"k": 1})
        await wait_until(lambda: provider.registered)
        assert provider.registered[0].config == {"k": 1}
        with pytest.raises(TypeError):
            client.register_trigger_type("x", provider)  # type: ignore[arg-type]
    finally:
        await client.shutdown_async()


async def test_on_functions_available(engine: EngineThread) -> None:
    client = iii.III(engine.url)
    seen: list[list[str]] = []
    await client.connect()
    try:
        unsubscribe = client.on_functions_available(
            lambda functions: seen.append([f.function_id for f in functions])
        )
        client.register_function("late::fn", lambda d: d)
        await wait_until(lambda: any("late::fn" in ids for ids in seen), timeout=10)
        assert all(not fid.startswith("iii::functions-available") for ids in seen for fid in ids)
        unsubscribe()
    finally:
        await client.shutdown_async()


async def test_large_payload_round_trip_and_limit(engine: EngineThread) -> None:
    # the 64 MiB limit is the socket's (the in-process transport has none: docs/sdk.md)
    client = iii.III(engine.url, InitOptions(transport="websocket"))

    async def size(data: str) -> int:
        return len(data)

    client.register_function("big::size", size)
    await client.connect()
    try:
        big = "x" * (20 * 1024 * 1024)  # above the 16 MiB single-frame limit: fragmented
        assert await call_until_found(client, {"function_id": "big::size", "payload": big}) == len(
            big
        )
        with pytest.raises(IIIInvocationError) as info:
            await client.trigger_async(
                {"function_id": "big::size", "payload": "y" * (64 * 1024 * 1024 + 1)}
            )
        assert info.value.code == "payload_too_large"
        assert client.get_connection_state() == "connected"
    finally:
        await client.shutdown_async()


async def test_bad_requests_raise_clearly(engine: EngineThread) -> None:
    client = iii.III(engine.url)
    await client.connect()
    try:
        with pytest.raises(TypeError, match="dict or TriggerRequest"):
            await client.trigger_async("engine::functions::list")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="timeout_ms"):
            await client.trigger_async({"function_id": "x", "timeout_ms": -5})
        with pytest.raises(TypeError, match="not JSON-serialisable"):
            await client.trigger_async({"function_id": "x", "payload": object()})
        assert client.get_connection_state() == "connected"
    finally:
        await client.shutdown_async()


@contextlib.asynccontextmanager
async def scripted_client(**options: Any) -> AsyncIterator[tuple[ScriptedEngine, iii.III]]:
    """A client connected to a :class:`ScriptedEngine`; ``options`` go to ``InitOptions``."""
    fake = ScriptedEngine()
    async with serve(fake.handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        client = iii.III(f"ws://127.0.0.1:{port}", InitOptions(**options))
        await client.connect()
        try:
            yield fake, client
        finally:
            await client.shutdown_async()


class ScriptedEngine:
    """A real WebSocket server playing the engine: records the handshake and frames."""

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        self.frames: list[dict[str, Any]] = []
        self.connection: ServerConnection | None = None
        self.connected = asyncio.Event()

    async def handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        self.headers = {k.lower(): v for k, v in ws.request.headers.raw_items()}
        self.connection = ws
        await ws.send(json.dumps({"type": "workerregistered", "worker_id": "w-1"}))
        self.connected.set()
        async for raw in ws:
            self.frames.append(json.loads(raw))


async def test_env_identity_and_token_header(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = ScriptedEngine()
    async with serve(fake.handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        monkeypatch.setenv("III_URL", f"ws://127.0.0.1:{port}")
        monkeypatch.setenv("III_WORKER_NAME", "from-env")
        monkeypatch.setenv("III_TOKEN", "s3cret")
        monkeypatch.setenv("III_NAMESPACE", "envns")
        client = iii.III(options=InitOptions(worker_name="from-options", headers={"X-A": "1"}))
        await client.connect()
        try:
            await wait_until(
                lambda: any(
                    f.get("function_id") == "engine::workers::register" for f in fake.frames
                )
            )
            meta = next(
                f for f in fake.frames if f.get("function_id") == "engine::workers::register"
            )
            assert meta["action"] == {"type": "void"} and "invocation_id" not in meta
            assert meta["data"]["name"] == "from-env"
            assert meta["data"]["namespace"] == "envns"
            assert meta["data"]["runtime"] == "python"
            assert fake.headers["authorization"] == "Bearer s3cret"
            assert fake.headers["x-a"] == "1"
            assert client.worker_id == "w-1"
            # a blank env namespace is ignored
            monkeypatch.setenv("III_NAMESPACE", "  ")
            assert iii.III().namespace is None
        finally:
            await client.shutdown_async()


async def test_malformed_engine_frames_are_dropped_not_fatal() -> None:
    async with scripted_client() as (fake, client):
        call = asyncio.ensure_future(client.trigger_async({"function_id": "a::b"}))
        await wait_until(lambda: any(f.get("function_id") == "a::b" for f in fake.frames))
        invocation_id = next(f for f in fake.frames if f.get("function_id") == "a::b")[
            "invocation_id"
        ]
        assert fake.connection is not None
        for garbage in (
            "not json",
            "[1,2]",
            '{"no":"type"}',
            '{"type":"invocationresult"}',
            '{"type":"brand-new-type","x":1}',
        ):
            await fake.connection.send(garbage)
        await fake.connection.send(
            json.dumps(
                {
                    "type": "invocationresult",
                    "invocation_id": invocation_id,
                    "function_id": "a::b",
                    "result": "fine",
                }
            )
        )
        assert await asyncio.wait_for(call, 5) == "fine"
        # an unknown function invoked on us gets function_not_found
        await fake.connection.send(
            json.dumps({"type": "invokefunction", "invocation_id": "i-9", "function_id": "zz::zz"})
        )
        await wait_until(lambda: any(f.get("invocation_id") == "i-9" for f in fake.frames))
        reply = next(f for f in fake.frames if f.get("invocation_id") == "i-9")
        assert reply["error"]["code"] == "function_not_found"
        assert client.get_connection_state() == "connected"


async def test_json_ping_is_answered() -> None:
    async with scripted_client() as (fake, _client):
        assert fake.connection is not None
        await fake.connection.send('{"type":"ping"}')
        await wait_until(lambda: {"type": "pong"} in fake.frames)


def test_websockets_is_the_transport() -> None:
    assert websockets.__version__
