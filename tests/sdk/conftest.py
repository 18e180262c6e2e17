"""Fixtures of the SDK tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from iii_asgi.engine import Engine, EngineConfig
from tests.conftest import FAST


@pytest.fixture
async def local_engine() -> AsyncIterator[Engine]:
    """An engine on the test's own event loop (as ``iii-asgi run`` runs the app and engine):
    a client of this loop connects to it in memory."""
    engine = Engine(EngineConfig(host="127.0.0.1", port=0, **FAST))
    await engine.start()
    try:
        yield engine
    finally:
        await engine.stop()
