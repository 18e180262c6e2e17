"""``iii_asgi.WorkerApp``: a pure worker under uvicorn with ``/healthz`` and ``/readyz``."""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest

import iii
from iii_asgi.worker_app import WorkerApp, process_client, process_worker_name
from tests.helpers import acall_until_found, wait_until
from tests.workers.servers import serve


def _math_app(url: str, **options: Any) -> WorkerApp:
    app = WorkerApp(url, worker_name="math", **options)

    @app.function("math::add", description="adds")
    async def add(data: dict[str, int]) -> int:
        return data["a"] + data["b"]

    return app


async def test_worker_serves_functions_and_probes(engine: Any) -> None:
    app = _math_app(engine.url)
    caller = iii.III(engine.url)
    await caller.connect()
    try:
        async with serve(app) as base, httpx.AsyncClient(base_url=base) as http:
            assert app.client.worker_name == f"math:{os.getpid()}"
            health = await http.get("/healthz")
            assert (health.status_code, health.json()) == (200, {"status": "ok"})
            await wait_until(lambda: app.ready)
            ready = await http.get("/readyz")
            assert ready.status_code == 200
            assert ready.json() == {
                "status": "ready",
                "worker_id": app.client.worker_id,
                "worker_name": f"math:{os.getpid()}",
                "standby": [],
            }
            missing = await http.get("/nope")
            assert missing.status_code == 404
            add = {"function_id": "math::add", "payload": {"a": 2, "b": 3}}
            assert await acall_until_found(caller, add) == 5
        # lifespan shutdown closed the worker connection
        assert app.client.get_connection_state() == "disconnected"
        assert not app.ready
    finally:
        await caller.shutdown_async()


async def test_startup_fails_loudly_without_engine(free_port: int) -> None:
    app = _math_app(f"ws://127.0.0.1:{free_port}", connect_timeout=0.3)
    with pytest.raises(RuntimeError, match="did not start"):
        async with serve(app):
            pass
    assert not app.ready


async def test_wait_for_engine_reports_not_ready_until_connected(
    free_port: int, engine_factory: Any
) -> None:
    fast = iii.ReconnectionConfig(initial_delay_ms=50, max_delay_ms=100)
    app = _math_app(
        f"ws://127.0.0.1:{free_port}",
        wait_for_engine=True,
        options=iii.InitOptions(reconnection_config=fast),
    )
    async with serve(app) as base, httpx.AsyncClient(base_url=base) as http:
        assert (await http.get("/healthz")).status_code == 200
        not_ready = await http.get("/readyz")
        assert not_ready.status_code == 503
        assert not_ready.json()["status"] == "not_ready"
        engine = engine_factory(port=free_port)
        await wait_until(lambda: app.ready, timeout=10)
        assert (await http.get("/readyz")).status_code == 200
        caller = iii.III(engine.url)
        await caller.connect()
        try:
            add = {"function_id": "math::add", "payload": {"a": 1, "b": 1}}
            assert await acall_until_found(caller, add) == 2
        finally:
            await caller.shutdown_async()


def test_process_worker_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("III_WORKER_NAME", raising=False)
    pid = os.getpid()
    assert process_worker_name(None) is None
    assert process_worker_name("orders") == f"orders:{pid}"
    assert process_worker_name(f"orders:{pid}") == f"orders:{pid}"
    monkeypatch.setenv("III_WORKER_NAME", "from-env")
    assert process_worker_name(None) == f"from-env:{pid}"


def test_process_client_suffixes_even_the_environment_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("III_WORKER_NAME", "shared")
    client = process_client(None, iii.InitOptions())
    assert client.worker_name == f"shared:{os.getpid()}"
    named = process_client(None, iii.InitOptions(worker_name="orders"))
    assert named.worker_name == f"orders:{os.getpid()}"
