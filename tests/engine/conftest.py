"""Fixtures of the engine tests: raw sockets closed after each test, a storage adapter, the
official SDK's venv."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from engine_wire import Wire
from official import official_python

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


@pytest.fixture(scope="module")
def official_sdk() -> None:
    """Fail early (once per module) when the official iii-sdk venv is not available; use with
    ``pytestmark = pytest.mark.usefixtures("official_sdk")``."""
    try:
        official_python()
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.fail(f"the official iii-sdk venv is not available: {exc}")
