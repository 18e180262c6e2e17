"""Shared fixtures: the embedded engine on an ephemeral port; the session-end check that no
process started by a test outlives the run (see ``tests/processes.py``)."""

from __future__ import annotations

import os
import random
import socket
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from iii_asgi.engine import EngineConfig, EngineThread
from tests.processes import SESSION_ENV, become_subreaper, leftovers

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


def _ephemeral_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(part) for part in f.read().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    return low, high


@pytest.fixture
def free_port() -> int:
    """A TCP port of 127.0.0.1 that is free now and lies outside the kernel's ephemeral range,
    for a test that binds it later: neither a port-0 listener nor an outgoing connection (a
    client retrying to connect to it) can take it meanwhile, as they could pytest-asyncio's
    ``unused_tcp_port`` ("address already in use" seen on a busy CI machine)."""
    low, _ = _ephemeral_range()
    for _ in range(200):
        port = random.randrange(10000, min(low, 32768))
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free TCP port found below the ephemeral range")


@pytest.fixture
def engine_url(engine: EngineThread, monkeypatch: pytest.MonkeyPatch) -> EngineThread:
    """``engine``, which bridged apps made with ``url=None`` connect to (``$III_URL``)."""
    monkeypatch.setenv("III_URL", engine.url)
    monkeypatch.setenv("OTEL_ENABLED", "false")
    return engine


def pytest_sessionstart(session: pytest.Session) -> None:
    """Mark every process the tests start (``$III_TEST_SESSION``, inherited) and become their
    subreaper, so the session-end check finds them even when orphaned."""
    os.environ[SESSION_ENV] = uuid.uuid4().hex
    become_subreaper()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when a process started by a test is still alive (after a short wait for
    the ones exiting); they are killed and listed."""
    marker = os.environ.get(SESSION_ENV)
    if not marker:
        return
    remaining = leftovers(marker)
    if not remaining:
        return
    lines = [f"{len(remaining)} process(es) started by the tests outlived them (now killed):"]
    lines += [f"  {info.describe()}" for info in remaining]
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.ensure_newline()
        reporter.write_sep("=", "leftover processes", red=True)
        for line in lines:
            reporter.write_line(line, red=True)
    else:
        print("\n".join(lines))
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(params=["websocket", "memory"])
def transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test once per SDK transport (``III_TRANSPORT`` of the clients it creates):
    ``websocket``, and ``memory`` (in memory to an engine of this process, on any loop:
    ``iii._memory_transport``). Key modules use it with ``pytest.mark.usefixtures``; a whole run
    can be flipped with ``III_TRANSPORT=memory pytest ...`` instead."""
    transport: str = request.param
    monkeypatch.setenv("III_TRANSPORT", transport)
    return transport
