"""Fixtures of the bridge tests: one embedded engine per module (apps come and go on it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from iii_asgi.engine import EngineConfig, EngineThread
from tests.conftest import FAST


@pytest.fixture(scope="module")
def module_engine() -> Iterator[EngineThread]:
    """An engine shared by a test module's bridged apps (``.url``, ``.http_url``)."""
    with EngineThread(EngineConfig(host="127.0.0.1", port=0, **FAST)) as running:
        yield running
