"""Fixtures of the engine tests: raw sockets closed after each test, a storage adapter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from engine_wire import Wire

from iii_asgi.engine.storage import MemoryStorage, SqliteStorage, Storage


@pytest.fixture(autouse=True)
async def _close_wires() -> AsyncIterator[None]:
    yield
    sockets, Wire.opened[:] = list(Wire.opened), []
    for ws in sockets:
        await ws.close()


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    """Each storage adapter in turn: in memory, then SQLite in ``tmp_path``; opened, closed
    after the test."""
    storage: Storage = MemoryStorage() if request.param == "memory" else SqliteStorage(tmp_path)
    await storage.open()
    yield storage
    await storage.close()
