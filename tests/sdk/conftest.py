from __future__ import annotations

from collections.abc import Iterator

import pytest

from iii_asgi.engine import EngineConfig, EngineThread


@pytest.fixture
def engine() -> Iterator[EngineThread]:
    with EngineThread(EngineConfig(host="127.0.0.1", port=0)) as running:
        yield running
