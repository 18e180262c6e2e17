"""Engine lifecycle: async API, restart on the same port, CLI (``iii-asgi engine``)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable

import pytest
import websockets
from engine_wire import Wire

from iii_asgi.engine import Engine, EngineConfig, EngineThread
from tests.processes import PATIENCE, Lines, started


async def test_async_engine_start_stop() -> None:
    engine = Engine(EngineConfig(host="127.0.0.1", port=0, http_port=0))
    await engine.start()
    assert re.fullmatch(r"ws://127\.0\.0\.1:\d+", engine.url)
    wire = await Wire.connect(engine.url, name="a")
    await wire.send({"type": "registerfunction", "id": "a::f"})
    await wire.sync()
    await engine.stop()
    await asyncio.wait_for(wire.ws.wait_closed(), 5)
    assert engine.core is not None and engine.core.registry.workers == {}
    await engine.stop()  # idempotent


async def test_start_fails_on_busy_port(engine: EngineThread) -> None:
    other = Engine(EngineConfig(host="127.0.0.1", port=engine.port or 0, http_port=0))
    with pytest.raises(RuntimeError):
        await other.start()


async def test_restart_on_same_port(engine_factory: Callable[..., EngineThread]) -> None:
    first = engine_factory()
    port = first.port
    wire = await Wire.connect(first.url, name="x")
    first.stop()
    await asyncio.wait_for(wire.ws.wait_closed(), 5)
    second = engine_factory(port=port)
    assert second.port == port
    again = await Wire.connect(second.url, name="x")
    await again.sync()


ENGINE_CLI = (sys.executable, "-m", "iii_asgi", "engine")


def test_cli_prints_url_and_stops_on_sigterm() -> None:
    with started(
        [*ENGINE_CLI, "--port", "0", "--http-port", "0", "--stream-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    ) as proc:
        out = Lines(proc.stdout, "engine stdout")
        Lines(proc.stderr, "engine stderr")
        url = out.wait_for(r"ws://127\.0\.0\.1:\d+").group(0)

        async def probe() -> None:
            async with websockets.connect(url) as ws:
                assert "workerregistered" in str(await ws.recv())

        asyncio.run(probe())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(PATIENCE) == 0
        out.join()
        assert "iii streams on ws://127.0.0.1:" in out.text and "stopped" in out.text
