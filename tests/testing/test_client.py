"""``iii_asgi.testing.TestClient``: Starlette's client semantics (lifespan, cookies, base_url,
redirects, exceptions), every request through the engine and the bridge."""

from __future__ import annotations

import asyncio
import importlib.metadata
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastapi import BackgroundTasks, FastAPI, Request, WebSocket

from iii_asgi import IIIBridge, Invocation
from iii_asgi.testing import WEBSOCKET_ERROR, InProcessEngine, TestClient

EVENTS: list[str] = []


def app_with_lifespan() -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        EVENTS.append("startup")
        yield {"pool": "pool-1"}
        EVENTS.append("shutdown")

    app = FastAPI(lifespan=lifespan)

    @app.get("/via")
    async def via(inv: Invocation, request: Request) -> dict[str, Any]:
        return {
            "via_engine": inv.via_engine,
            "function_id": inv.function_id,
            "client": list(request.client or ()),
            "url": str(request.url),
        }

    @app.get("/state")
    async def state(request: Request) -> str:
        return str(request.state.pool)

    @app.post("/login")
    async def login(request: Request) -> dict[str, str]:
        from fastapi.responses import JSONResponse

        response = JSONResponse({"ok": "yes"})
        response.set_cookie("session", "s1")
        return response  # type: ignore[return-value]

    @app.get("/me")
    async def me(request: Request) -> dict[str, Any]:
        return {"session": request.cookies.get("session"), "auth": request.headers.get("x-auth")}

    @app.get("/old")
    async def old() -> Any:
        from fastapi.responses import RedirectResponse

        return RedirectResponse("/me")

    @app.get("/later")
    async def later(tasks: BackgroundTasks) -> str:
        async def fail() -> None:
            await asyncio.sleep(0.05)
            raise ValueError("in the background")

        tasks.add_task(fail)
        return "answered"

    @app.get("/crash")
    async def crash() -> None:
        raise KeyError("crash")

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()

    return app


def test_requests_go_through_the_engine_with_the_lifespan() -> None:
    EVENTS.clear()
    app = app_with_lifespan()
    with TestClient(app) as client:
        assert EVENTS == ["startup"]
        assert client.get("/via").json() == {
            "via_engine": True,
            "function_id": "via::via",
            "client": ["testclient", 50000],
            "url": "http://testserver/via",
        }
        assert client.get("/state").json() == "pool-1"
    assert EVENTS == ["startup", "shutdown"]
    assert not client.engine.running  # its own engine stopped with it


def test_without_with_the_lifespan_does_not_run_but_requests_work() -> None:
    EVENTS.clear()
    client = TestClient(app_with_lifespan())
    try:
        assert client.get("/via").json()["via_engine"] is True
        assert EVENTS == []  # as with Starlette's client
    finally:
        client.close()
    assert not client.engine.running


def test_cookies_headers_base_url_and_redirects() -> None:
    with TestClient(
        app_with_lifespan(), base_url="http://example.org", headers={"x-auth": "t"}
    ) as client:
        assert client.post("/login").json() == {"ok": "yes"}
        assert client.get("/me").json() == {"session": "s1", "auth": "t"}
        assert client.get("/via").json()["url"] == "http://example.org/via"
        followed = client.get("/old")
        assert followed.json()["session"] == "s1" and followed.history[0].status_code == 307
        assert client.get("/old", follow_redirects=False).headers["location"] == "/me"
    with TestClient(app_with_lifespan(), follow_redirects=False) as client:
        assert client.get("/old").status_code == 307
    with TestClient(app_with_lifespan(), base_url="https://testserver") as client:
        assert client.get("/via").json()["url"] == "https://testserver/via"


def test_raise_server_exceptions() -> None:
    with TestClient(app_with_lifespan()) as client:
        with pytest.raises(KeyError, match="crash"):
            client.get("/crash")
        with pytest.raises(ValueError, match="in the background"):
            client.get("/later")  # raised after the answer, as Starlette's client does
    with TestClient(app_with_lifespan(), raise_server_exceptions=False) as client:
        crashed = client.get("/crash")
        assert (crashed.status_code, crashed.text) == (500, "Internal Server Error")
        assert client.get("/later").json() == "answered"


def test_websocket_routes_get_a_clear_error() -> None:
    with TestClient(app_with_lifespan()) as client, pytest.raises(RuntimeError) as info:
        client.websocket_connect("/ws")
    assert str(info.value) == WEBSOCKET_ERROR
    assert "does not carry WebSockets" in WEBSOCKET_ERROR


def test_the_apps_own_bridge_is_used_and_restored() -> None:
    app = FastAPI()

    @app.get("/ping")
    def ping() -> str:
        return "pong"

    bridge = IIIBridge(app, url="ws://127.0.0.1:1", enabled=False, root_path="/x")
    with InProcessEngine() as engine:
        with TestClient(app, engine=engine) as client:
            assert client.bridge is bridge and bridge.ready
            assert client.get("/ping").json() == "pong"
            assert engine.running
        assert engine.running  # a shared engine outlives the client
    assert (bridge.url, bridge.enabled, bridge.root_path) == ("ws://127.0.0.1:1", False, "/x")


def test_asyncio_only() -> None:
    with pytest.raises(ValueError, match="asyncio"):
        TestClient(FastAPI(), backend="trio")


def test_the_pytest_plugin_is_registered() -> None:
    entry_points = importlib.metadata.entry_points(group="pytest11")
    assert "iii_asgi.testing.plugin" in {ep.value for ep in entry_points}


def test_public_surface() -> None:
    import iii_asgi.testing

    assert sorted(iii_asgi.testing.__all__) == [
        "InProcessEngine",
        "MockFunction",
        "TestClient",
        "WEBSOCKET_ERROR",
        "engine_config",
    ]
