"""Shared fixtures: the embedded engine on an ephemeral port."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from iii_asgi.engine import EngineConfig, EngineThread

# Workers initialise OpenTelemetry on connect (one process-wide pipeline with its own /otel
# socket); the suite runs with it off, and tests/observability turns it on per test.
os.environ.setdefault("OTEL_ENABLED", "false")

#: Short timers and an ephemeral HTTP port so the suite stays fast and engines never share a
#: port; tests needing other options use ``engine_factory``.
FAST: dict[str, Any] = {
    "registration_grace_ms": 500,
    "functions_poll_interval_s": 0.2,
    "http_port": 0,
    "stream_port": 0,
}


@pytest.fixture
def engine() -> Iterator[EngineThread]:
    """A running engine (own loop, background thread) on 127.0.0.1, port 0; use ``.url``."""
    with EngineThread(EngineConfig(host="127.0.0.1", port=0, **FAST)) as running:
        yield running


@pytest.fixture
def engine_factory() -> Iterator[Callable[..., EngineThread]]:
    """``engine_factory(**EngineConfig options) -> EngineThread`` (started). Pass ``port=`` of a
    stopped engine to restart on the same port. Every engine is stopped after the test."""
    started: list[EngineThread] = []

    def make(**options: Any) -> EngineThread:
        config = EngineConfig(**{"host": "127.0.0.1", "port": 0, **FAST, **options})
        thread = EngineThread(config).start()
        started.append(thread)
        return thread

    yield make
    for thread in started:
        thread.stop()


@pytest.fixture
def engine_url(engine: EngineThread, monkeypatch: pytest.MonkeyPatch) -> EngineThread:
    """``engine``, which bridged apps made with ``url=None`` connect to (``$III_URL``)."""
    monkeypatch.setenv("III_URL", engine.url)
    monkeypatch.setenv("OTEL_ENABLED", "false")
    return engine
