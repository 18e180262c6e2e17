"""Helpers of the RBAC tests: an engine with an RBAC listener, a trusted raw worker serving
functions from Python callables, and the frames an untrusted worker sees."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import websockets
from engine_wire import TIMEOUT, Wire

#: handler(data) -> result; raising ``Refused`` answers with an error.
Handler = Callable[[Any], Any]


class Refused(Exception):
    """Raised by a handler: the invocation fails with ``code`` / ``message``."""

    def __init__(self, code: str = "DENIED", message: str = "denied") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Trusted:
    """A raw worker on the trusted port that registers ``handlers`` and answers each call with
    ``handler(data)`` (``data`` without ``_caller_worker_id``); ``calls[id]`` records inputs."""

    def __init__(self, wire: Wire, handlers: dict[str, Handler]) -> None:
        self.wire = wire
        self.handlers = handlers
        self.calls: dict[str, list[Any]] = {fid: [] for fid in handlers}
        self.metadata: dict[str, list[Any]] = {fid: [] for fid in handlers}
        self.task: asyncio.Task[None] | None = None
        self.answers: set[asyncio.Task[None]] = set()

    @classmethod
    @contextlib.asynccontextmanager
    async def serving(
        cls,
        url: str,
        handlers: dict[str, Handler],
        metadata: dict[str, Any] | None = None,
        namespace: str | None = None,
    ) -> AsyncIterator[Trusted]:
        """Connect (worker name ``trusted``, in ``namespace`` when given), register
        ``handlers`` (with ``metadata[id]``), serve until the block ends."""
        if namespace is None:
            wire = await Wire.connect(url, name="trusted")
        else:
            wire = await Wire.connect(url, name="trusted", namespace=namespace)
        for function_id in handlers:
            frame: dict[str, Any] = {"type": "registerfunction", "id": function_id}
            if metadata and function_id in metadata:
                frame["metadata"] = metadata[function_id]
            await wire.send(frame)
        await wire.sync()
        trusted = cls(wire, handlers)
        trusted.task = asyncio.get_running_loop().create_task(trusted._serve())
        try:
            yield trusted
        finally:
            for task in (trusted.task, *trusted.answers):
                task.cancel()
            await asyncio.gather(trusted.task, *trusted.answers, return_exceptions=True)
            await wire.close()

    async def _serve(self) -> None:
        while True:
            call = json.loads(await self.wire.ws.recv())
            if call.get("type") != "invokefunction":
                continue
            task = asyncio.get_running_loop().create_task(self._answer(call))
            self.answers.add(task)
            task.add_done_callback(self.answers.discard)

    async def _answer(self, call: dict[str, Any]) -> None:
        function_id = call["function_id"]
        data = call.get("data")
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if k != "_caller_worker_id"}
        self.calls[function_id].append(data)
        self.metadata[function_id].append(call.get("metadata"))
        frame: dict[str, Any] = {
            "type": "invocationresult",
            "invocation_id": call["invocation_id"],
            "function_id": function_id,
        }
        try:
            result = self.handlers[function_id](data)
            if asyncio.iscoroutine(result):
                result = await result
            frame["result"] = result
        except Refused as exc:
            frame["error"] = {"code": exc.code, "message": exc.message}
        await self.wire.send(frame)


async def refused(url: str, headers: dict[str, str] | None = None, path: str = "/") -> Any:
    """Connect to a listener whose auth refuses us: the one ``error`` frame, then the close."""
    ws = await websockets.connect(url + path, additional_headers=headers)
    Wire.opened.append(ws)
    frame = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    with contextlib.suppress(websockets.ConnectionClosed):
        extra = await asyncio.wait_for(ws.recv(), TIMEOUT)
        raise AssertionError(f"unexpected frame after the error: {extra}")
    return frame


def forbidden(function_id: str, remedy: str = "add to rbac.expose_functions") -> dict[str, Any]:
    """The §8.3 error body."""
    return {"code": "FORBIDDEN", "message": f"function '{function_id}' not allowed ({remedy})"}
