"""Close every raw socket a test opened (tests may leave them open on purpose or on failure)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from engine_wire import Wire


@pytest.fixture(autouse=True)
async def _close_wires() -> AsyncIterator[None]:
    yield
    sockets, Wire.opened[:] = list(Wire.opened), []
    for ws in sockets:
        await ws.close()
