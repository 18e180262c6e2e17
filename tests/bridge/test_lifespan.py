"""The bridge joins the app's lifespan: order, failures, drain, state."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from iii_asgi import IIIBridge
from iii_asgi.engine import EngineThread
from tests.helpers import wait_for

from .support import UvicornThread, serve, wait_routes


def recording_app(events: list[str], bridge_box: list[IIIBridge]) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        events.append(f"user startup (bridge ready: {bridge_box[0].ready})")
        yield {"pool": object()}
        client_gone = bridge_box[0]._client is None
        events.append(f"user shutdown (bridge closed: {client_gone})")

    app = FastAPI(lifespan=lifespan)

    @app.get("/pool")
    def pool(request: Request) -> dict[str, int]:
        return {"pool": id(request.state.pool)}

    return app


def test_order_and_state(module_engine: EngineThread, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="iii_asgi.bridge")
    events: list[str] = []
    box: list[IIIBridge] = []
    app = recording_app(events, box)
    box.append(IIIBridge(app, url=module_engine.url))
    with serve(app) as server:
        assert box[0].ready
        events.append("serving")
        wait_routes(module_engine, box[0])
        with httpx.Client(timeout=10) as client:
            direct = client.get(server.url + "/pool").json()
            via_engine = client.get(module_engine.http_url + "/pool").json()
        assert direct == via_engine  # the same lifespan state object reaches both
    assert events == [
        "user startup (bridge ready: False)",
        "serving",
        "user shutdown (bridge closed: True)",
    ]
    wait_routes(module_engine, 0)  # the triggers went with the worker
    table = [r.getMessage() for r in caplog.records if "routes:" in r.getMessage()]
    assert len(table) == 1
    assert "GET     /pool" in table[0] and "pool::pool" in table[0] and "http /pool" in table[0]


def test_failed_user_startup_never_connects(module_engine: EngineThread) -> None:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        raise RuntimeError("the database is down")
        yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/never")
    def never() -> None:
        return None

    bridge = IIIBridge(app, url=module_engine.url)
    server = UvicornThread(app)
    with pytest.raises(RuntimeError, match="did not start"):
        server.start()
    server.stop()
    # the bridge never started: no table, no client, nothing registered at the engine
    assert not bridge.ready and bridge.routes == [] and bridge._client is None
    wait_routes(module_engine, 0, prefix="never::")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_startup_fails_loudly_without_engine_and_user_shutdown_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events: list[str] = []
    box: list[IIIBridge] = []
    app = recording_app(events, box)
    box.append(IIIBridge(app, url=f"ws://127.0.0.1:{_closed_port()}"))
    server = UvicornThread(app)
    with pytest.raises(RuntimeError, match="did not start"):
        server.start()
    server.stop()
    assert events == [
        "user startup (bridge ready: False)",
        "user shutdown (bridge closed: True)",
    ]
    assert any("cannot connect to the iii engine" in r.getMessage() for r in caplog.records)


def test_wait_for_engine_waits(engine_factory: Any) -> None:
    port = _closed_port()
    app = FastAPI()

    @app.get("/ping")
    def ping() -> dict[str, bool]:
        return {"pong": True}

    bridge = IIIBridge(app, url=f"ws://127.0.0.1:{port}", wait_for_engine=True)
    server = UvicornThread(app)
    starting = threading.Thread(target=server.start)
    starting.start()
    try:
        assert not server.server.started  # still waiting for the engine
        engine = engine_factory(port=port)
        starting.join(20)
        assert server.server.started and bridge.ready
        wait_routes(engine, bridge)
        assert httpx.get(engine.http_url + "/ping", timeout=10).json() == {"pong": True}
    finally:
        server.stop()


def test_drain_completes_in_flight_request_before_user_shutdown(
    module_engine: EngineThread,
) -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.release = asyncio.Event()
        yield
        events.append("user shutdown")

    app = FastAPI(lifespan=lifespan)

    @app.get("/slow")
    async def slow(request: Request) -> dict[str, bool]:
        events.append("request started")
        await request.app.state.release.wait()
        events.append("request finished")
        return {"done": True}

    bridge = IIIBridge(app, url=module_engine.url, drain_timeout=30)
    server = UvicornThread(app).start()
    wait_routes(module_engine, bridge)
    results: list[httpx.Response] = []
    caller = threading.Thread(
        target=lambda: results.append(httpx.get(module_engine.http_url + "/slow", timeout=30))
    )
    caller.start()
    wait_for(lambda: bridge.inflight == 1, timeout=10)
    stopping = threading.Thread(target=server.stop)
    stopping.start()
    wait_routes(module_engine, 0)  # unregistered first: the engine stops routing here
    assert events == ["request started"]
    loop = server.server.servers[0].get_loop() if server.server.servers else None
    assert loop is not None
    loop.call_soon_threadsafe(app.state.release.set)
    caller.join(30)
    stopping.join(30)
    assert results[0].status_code == 200 and results[0].json() == {"done": True}
    assert events == ["request started", "request finished", "user shutdown"]


def test_second_process_with_the_same_routes_stands_by_and_takes_over(
    module_engine: EngineThread,
) -> None:
    """What ``uvicorn --workers 2`` does: two bridged copies of one app on one engine."""

    def make(tag: str) -> FastAPI:
        app = FastAPI()

        @app.get("/owner")
        def owner() -> dict[str, str]:
            return {"server": tag}

        return app

    first, second = make("first"), make("second")
    owner = IIIBridge(first, url=module_engine.url)
    standby = IIIBridge(second, url=module_engine.url)
    server_one = UvicornThread(first).start()
    try:
        wait_routes(module_engine, owner, prefix="owner::")
        with serve(second):
            assert standby.ready  # a standby is not a failed startup
            assert "owner::owner" in standby.client.standby_functions
            url = module_engine.http_url + "/owner"
            assert httpx.get(url, timeout=10).json() == {"server": "first"}
            server_one.stop()
            wait_for(lambda: _answer(url) == {"server": "second"}, timeout=15)
    finally:
        server_one.stop()


def _answer(url: str) -> Any:
    response = httpx.get(url, timeout=10)
    return response.json() if response.status_code == 200 else None


def test_drain_timeout_bounds_shutdown(module_engine: EngineThread) -> None:
    app = FastAPI()
    never = asyncio.Event()

    @app.get("/stuck")
    async def stuck() -> None:
        await never.wait()

    bridge = IIIBridge(app, url=module_engine.url, drain_timeout=0.2)
    server = UvicornThread(app).start()
    wait_routes(module_engine, bridge, prefix="stuck::")
    results: list[httpx.Response] = []
    caller = threading.Thread(
        target=lambda: results.append(httpx.get(module_engine.http_url + "/stuck", timeout=30))
    )
    caller.start()
    wait_for(lambda: bridge.inflight == 1, timeout=10)
    server.stop()  # returns: the drain gave up after drain_timeout and closed
    caller.join(30)
    assert not server.thread.is_alive()
    assert results[0].status_code == 500  # the engine: the worker went away mid-invocation


def test_disabled_bridge_leaves_the_app_alone() -> None:
    events: list[str] = []
    box: list[IIIBridge] = []
    app = recording_app(events, box)
    box.append(IIIBridge(app, url=f"ws://127.0.0.1:{_closed_port()}", enabled=False))
    with serve(app) as server:
        response = httpx.get(server.url + "/pool", timeout=10)
        assert response.status_code == 200
        assert not box[0].ready
        with pytest.raises(RuntimeError, match="not started"):
            box[0].client  # noqa: B018
    assert events == [
        "user startup (bridge ready: False)",
        "user shutdown (bridge closed: True)",
    ]
