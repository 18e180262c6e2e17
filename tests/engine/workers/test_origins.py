"""Browser origins on every engine WebSocket (docs/rbac.md): an upgrade carrying a foreign
``Origin`` gets 403 on the worker socket, ``/otel``, channels and the stream socket; allowed
origins and clients without an ``Origin`` are accepted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import websockets
from engine_wire import Wire

from iii_asgi.engine import EngineThread
from iii_asgi.engine.config import RbacConfig, WorkerListenerConfig

EngineFactory = Callable[..., EngineThread]
ALLOWED = "https://app.example"
FOREIGN = "https://evil.example"


async def _sockets(engine: EngineThread, base: str) -> dict[str, str]:
    """The four kinds of engine WebSocket, with a live channel."""
    wire = await Wire.connect(base)
    refs = await wire.result("engine::channels::create", {})
    reader = refs["reader"]
    channel = f"{base}/ws/channels/{reader['channel_id']}?key={reader['access_key']}&dir=read"
    return {
        "worker": base + "/",
        "otel": base + "/otel",
        "channel": channel,
        "stream": engine.stream_url + "/",
    }


async def _status(url: str, origin: str | None) -> int:
    """101 when the upgrade is accepted, else the HTTP status."""
    try:
        async with websockets.connect(url, origin=origin):
            return 101
    except websockets.exceptions.InvalidStatus as exc:
        return exc.response.status_code


@pytest.mark.parametrize("kind", ["worker", "otel", "channel", "stream"])
async def test_a_foreign_origin_is_refused_by_default(engine: EngineThread, kind: str) -> None:
    url = (await _sockets(engine, engine.url))[kind]
    assert await _status(url, FOREIGN) == 403
    assert await _status(url, "null") == 403  # file:// pages and sandboxed frames


@pytest.mark.parametrize("kind", ["worker", "otel", "channel", "stream"])
async def test_allowed_origins(engine_factory: EngineFactory, kind: str) -> None:
    engine = engine_factory(allowed_origins=[ALLOWED], stream_allowed_origins=[ALLOWED + "/"])
    url = (await _sockets(engine, engine.url))[kind]
    assert await _status(url, FOREIGN) == 403
    assert await _status(url, ALLOWED) == 101
    assert await _status(url, ALLOWED.upper()) == 101  # origins compare case-insensitively


async def test_no_origin_is_accepted(engine: EngineThread) -> None:
    sockets = await _sockets(engine, engine.url)
    for url in sockets.values():
        assert await _status(url, None) == 101


async def test_each_listener_has_its_own_origins(engine_factory: EngineFactory) -> None:
    listeners = [
        WorkerListenerConfig(port=0, rbac=RbacConfig(), allowed_origins=[ALLOWED]),
        WorkerListenerConfig(port=0, allowed_origins=["*"]),
    ]
    engine = engine_factory(worker_listeners=listeners)
    main, rbac_url, anyone = engine.worker_urls
    assert await _status(main, ALLOWED) == 403
    assert await _status(rbac_url, ALLOWED) == 101
    assert await _status(rbac_url, FOREIGN) == 403
    assert await _status(anyone, FOREIGN) == 101
    assert await _status(anyone + "/ws/channels/nope?key=k&dir=read", FOREIGN) == 404


async def test_the_refusal_is_a_plain_403(engine: EngineThread) -> None:
    with pytest.raises(websockets.exceptions.InvalidStatus) as info:
        async with websockets.connect(engine.url, origin=FOREIGN):
            pass
    response: Any = info.value.response
    assert response.status_code == 403
    assert b"allowed_origins" in response.body
