"""Fixtures of the engine tests: raw sockets closed after each test, a storage adapter, a real
``redis-server`` (one per session, emptied before each test that uses it), and the built-ins'
adapters, the official SDK's venv.

A module marked ``pytestmark = pytest.mark.adapters`` runs each test using ``engine`` or
``engine_factory`` twice: with every built-in on the local adapter, then on Redis
(``adapter`` is the EngineConfig options of the run). A test marked ``local_only`` (slow, or
about the local store itself) runs once.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis
from engine_wire import Wire
from official import official_python

from iii_asgi.engine import EngineThread
from iii_asgi.engine.storage import MemoryStorage, SqliteStorage, Storage
from iii_asgi.engine.storage.redis import RedisStorage
from tests.redis_server import RedisServer, missing_reason, redis_options


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "adapters: run on the local and the Redis adapters")
    config.addinivalue_line("markers", "local_only: in an `adapters` module, run locally only")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    definition = metafunc.definition
    if not definition.get_closest_marker("adapters") or definition.get_closest_marker("local_only"):
        return
    if {"engine", "engine_factory"} & set(metafunc.fixturenames):
        metafunc.parametrize("adapter", ["local", "redis"], indirect=True)


@pytest.fixture
def adapter(request: pytest.FixtureRequest) -> dict[str, Any]:
    """EngineConfig options of this test's adapter: ``{}`` (local), or every built-in on the
    session's Redis."""
    if getattr(request, "param", "local") == "local":
        return {}
    return redis_options(request.getfixturevalue("redis_url"))


@pytest.fixture
def engine_factory(
    engine_factory: Callable[..., EngineThread], adapter: dict[str, Any]
) -> Callable[..., EngineThread]:
    """The root ``engine_factory`` with this test's adapter options (explicit options win)."""

    def make(**options: Any) -> EngineThread:
        return engine_factory(**{**adapter, **options})

    return make


@pytest.fixture
def engine(engine_factory: Callable[..., EngineThread]) -> EngineThread:
    """A running engine on this test's adapter."""
    return engine_factory()


@pytest.fixture(autouse=True)
async def _close_wires() -> AsyncIterator[None]:
    yield
    sockets, Wire.opened[:] = list(Wire.opened), []
    for ws in sockets:
        await ws.close()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One ``redis-server`` for the session (own port, data directory and process group);
    skipped, with the reason, where ``redis-server`` is not installed."""
    reason = missing_reason()
    if reason is not None:
        pytest.skip(reason)
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's Redis, emptied for this test."""
    redis_server.flush()
    return redis_server.url


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    """Each storage adapter in turn: in memory, SQLite in ``tmp_path``, then Redis; opened,
    closed after the test."""
    client = None
    storage: Storage
    if request.param == "memory":
        storage = MemoryStorage()
    elif request.param == "sqlite":
        storage = SqliteStorage(tmp_path)
    else:
        client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
        storage = RedisStorage(client, "", "engine-under-test")
    await storage.open()
    yield storage
    await storage.close()
    if client is not None:
        await client.aclose()


@pytest.fixture(scope="module")
def official_sdk() -> None:
    """Fail early (once per module) when the official iii-sdk venv is not available; use with
    ``pytestmark = pytest.mark.usefixtures("official_sdk")``."""
    try:
        official_python()
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.fail(f"the official iii-sdk venv is not available: {exc}")
