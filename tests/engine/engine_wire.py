"""A raw WebSocket worker speaking the exact frames of protocol.md, for engine tests."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

TIMEOUT = 3.0


class Wire:
    """One raw control socket. ``worker_id``/``token`` come from ``workerregistered``."""

    #: every socket opened, closed by the autouse fixture of tests/engine/conftest.py
    opened: list[ClientConnection] = []

    def __init__(self, ws: ClientConnection, hello: dict[str, Any]) -> None:
        Wire.opened.append(ws)
        self.ws = ws
        self.worker_id: str = hello["worker_id"]
        self.token: str = hello["reattach_token"]
        self.hello = hello

    @classmethod
    async def connect(
        cls, url: str, *, headers: dict[str, str] | None = None, **register: Any
    ) -> Wire:
        """Connect (``headers`` go with the upgrade request); with keyword arguments also send
        ``engine::workers::register`` (void)."""
        ws = await websockets.connect(
            url, max_size=2**26, compression=None, additional_headers=headers
        )
        hello = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        assert hello["type"] == "workerregistered", hello
        wire = cls(ws, hello)
        if register:
            await wire.register(**register)
        return wire

    async def register(self, **data: Any) -> None:
        data.setdefault("pid", 1)
        data.setdefault("runtime", "python")
        await self.send(
            {
                "type": "invokefunction",
                "function_id": "engine::workers::register",
                "data": data,
                "action": {"type": "void"},
            }
        )

    async def register_trigger(
        self, trigger_id: str, trigger_type: str, function_id: str, config: Any, **extra: Any
    ) -> None:
        """Send ``registertrigger`` (§2.9); ``extra`` adds fields (``metadata``...)."""
        await self.send(
            {
                "type": "registertrigger",
                "id": trigger_id,
                "trigger_type": trigger_type,
                "function_id": function_id,
                "config": config,
                **extra,
            }
        )

    async def send(self, frame: dict[str, Any] | str) -> None:
        await self.ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def recv(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        return frame

    async def recv_type(self, kind: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The next frame of type ``kind``, skipping others."""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.recv(timeout)
                if frame["type"] == kind:
                    return frame

    async def sync(self) -> None:
        """Barrier: JSON ping → pong, so every frame sent before has been processed (§1.6)."""
        await self.send({"type": "ping"})
        await self.recv_type("pong")

    async def silent(self, timeout: float = 0.3) -> None:
        """Assert that no frame arrives within ``timeout`` seconds."""
        try:
            frame = await asyncio.wait_for(self.ws.recv(), timeout)
        except asyncio.TimeoutError:
            return
        raise AssertionError(f"unexpected frame: {frame}")

    async def invoke(self, function_id: str, data: Any = None, **extra: Any) -> str:
        """Send a sync ``invokefunction``; returns its invocation id."""
        inv_id = extra.pop("invocation_id", str(uuid.uuid4()))
        frame = {
            "type": "invokefunction",
            "function_id": function_id,
            "invocation_id": inv_id,
            **extra,
        }
        if data is not None:
            frame["data"] = data
        await self.send(frame)
        return inv_id

    async def call(self, function_id: str, data: Any = None, **extra: Any) -> dict[str, Any]:
        """Invoke and wait for the matching ``invocationresult``."""
        inv_id = await self.invoke(function_id, data, **extra)
        result = await self.recv_type("invocationresult")
        assert result["invocation_id"] == inv_id, result
        return result

    async def result(self, function_id: str, data: Any = None, **extra: Any) -> Any:
        """Invoke and return ``result``, failing on an error."""
        frame = await self.call(function_id, data, **extra)
        assert "error" not in frame, frame
        return frame.get("result")

    async def serve_one(self, transform: Any = None) -> dict[str, Any]:
        """Answer the next ``invokefunction`` with its data (or ``transform(data)``)."""
        call = await self.recv_type("invokefunction")
        result = call.get("data") if transform is None else transform(call.get("data"))
        await self.send(
            {
                "type": "invocationresult",
                "invocation_id": call["invocation_id"],
                "function_id": call["function_id"],
                "result": result,
            }
        )
        return call

    async def close(self) -> None:
        await self.ws.close()


async def settle(seconds: float = 0.05) -> None:
    """Let the engine process frames already sent (it processes each socket in order)."""
    await asyncio.sleep(seconds)
