"""A pure iii worker as an ASGI application, for ``uvicorn mymodule:app``.

Example (``mymodule.py``)::

    from iii_asgi import WorkerApp

    app = WorkerApp(worker_name="math")


    @app.function("math::add")
    async def add(data: dict) -> int:
        return data["a"] + data["b"]

``uvicorn mymodule:app`` then connects in the lifespan startup (engine URL: ``url``, else
``III_URL``, else ``ws://127.0.0.1:49134``), serves the functions on uvicorn's event loop, and
answers two HTTP probes:

- ``GET /healthz`` → 200 ``{"status": "ok"}`` while the process is up;
- ``GET /readyz`` → 200 ``{"status": "ready", "worker_id", "worker_name", "standby"}`` when the
  connection is up and the engine has registered the worker (``workerregistered``, protocol.md
  §2.2), else 503 ``{"status": "not_ready", "state"}``. ``standby`` lists the functions another
  live worker owns (see ``iii._standby``): a standby process is ready, it takes over when the
  owner leaves.

Any other path is a 404. Under ``uvicorn --workers N`` every process gets its own worker name
(:func:`process_worker_name`), so they never collide on the name (which would be fatal,
protocol.md §1.10); a function id all of them register has one owner and N-1 standbys.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
from collections.abc import Callable
from typing import Any, TypeVar

import iii

from ._asgi import Receive, Scope, Send, send_response

__all__ = ["WorkerApp", "process_client", "process_worker_name"]

logger = logging.getLogger("iii_asgi.worker_app")

F = TypeVar("F", bound=Callable[..., Any])


def process_worker_name(name: str | None) -> str | None:
    """The worker name for this process: ``name`` (else env ``III_WORKER_NAME``) with
    ``:<pid>`` appended, so the processes of ``uvicorn --workers N`` never share a name.
    ``None`` when neither is set: the SDK default (``<hostname>:<pid>``) is already unique."""
    base = (name or os.environ.get("III_WORKER_NAME", "")).strip()
    if not base:
        return None
    suffix = f":{os.getpid()}"
    return base if base.endswith(suffix) else base + suffix


def process_client(url: str | None, options: iii.InitOptions) -> iii.III:
    """An :class:`iii.III` whose worker name is :func:`process_worker_name` of
    ``options.worker_name`` (else ``III_WORKER_NAME``): unique per process, so the processes of
    ``uvicorn --workers N`` never collide on the name, which the engine refuses fatally
    (``WORKER_NAMESPACE_CONFLICT``, protocol.md §1.10)."""
    name = process_worker_name(options.worker_name)
    client = iii.III(url, dataclasses.replace(options, worker_name=name))
    if name is not None:
        # III_WORKER_NAME normally wins over the option (seed surface, 0.25); here the
        # per-process name derived from it must win, or N processes would share it.
        client._config.name = name
    return client


class WorkerApp:
    """An ASGI application that is an iii worker (see the module docstring).

    Arguments:
        url: engine URL; ``None`` reads ``III_URL``, else ``ws://127.0.0.1:49134``.
        worker_name: base of the worker name (``<worker_name>:<pid>``); ``None``: the SDK
            default ``<hostname>:<pid>``.
        options: further :class:`iii.InitOptions` (its ``worker_name`` is the base name when
            ``worker_name`` is not given).
        connect_timeout: seconds the lifespan startup waits for the engine. A startup that
            cannot connect fails (uvicorn exits) unless ``wait_for_engine`` is set.
        wait_for_engine: start serving at once and keep connecting in the background
            (``/readyz`` answers 503 until connected).

    ``app.client`` is the :class:`iii.III` (usable before startup: registrations made earlier
    are sent on connect). Raises ``ValueError`` for a blank namespace (from ``InitOptions``).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        worker_name: str | None = None,
        options: iii.InitOptions | None = None,
        connect_timeout: float = 30.0,
        wait_for_engine: bool = False,
    ) -> None:
        options = options or iii.InitOptions()
        if worker_name is not None:
            options = dataclasses.replace(options, worker_name=worker_name)
        self.client = process_client(url, options)
        self.connect_timeout = connect_timeout
        self.wait_for_engine = wait_for_engine
        self.started = False
        self._connecting: asyncio.Future[None] | None = None

    def function(
        self,
        function_id: str,
        *,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Callable[[F], F]:
        """Decorator: register the handler as ``function_id`` (``III.register_function``)."""

        def decorate(handler: F) -> F:
            self.client.register_function(
                function_id, handler, description=description, metadata=metadata
            )
            return handler

        return decorate

    @property
    def ready(self) -> bool:
        """Connected and registered by the engine (what ``/readyz`` reports)."""
        client = self.client
        return (
            self.started
            and client.get_connection_state() == "connected"
            and client.worker_id is not None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "http":
            await self._http(scope, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1000})
        else:  # pragma: no cover - ASGI defines only the three
            raise RuntimeError(f"unsupported ASGI scope type {kind!r}")

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self._startup()
                except BaseException as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    if self._connecting is not None:
                        self._connecting.cancel()
                        await asyncio.gather(self._connecting, return_exceptions=True)
                    await self.client.shutdown_async()
                finally:
                    self.started = False
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _startup(self) -> None:
        client = self.client
        self.started = True
        if self.wait_for_engine:
            self._connecting = asyncio.ensure_future(client.connect(timeout=None))
            return
        try:
            await client.connect(timeout=self.connect_timeout)
        except BaseException:
            self.started = False
            raise
        logger.info("iii worker %s connected to %s", client.worker_name, client.get_address())

    async def _http(self, scope: Scope, send: Send) -> None:
        path = scope["path"]
        if path == "/healthz":
            await _json(send, 200, {"status": "ok"})
        elif path == "/readyz":
            client = self.client
            if self.ready:
                await _json(
                    send,
                    200,
                    {
                        "status": "ready",
                        "worker_id": client.worker_id,
                        "worker_name": client.worker_name,
                        "standby": sorted(client.standby_functions),
                    },
                )
            else:
                await _json(
                    send, 503, {"status": "not_ready", "state": client.get_connection_state()}
                )
        else:
            await _json(send, 404, {"detail": "Not Found"})


async def _json(send: Send, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body, separators=(",", ":")).encode()
    await send_response(send, status, data, b"application/json")
