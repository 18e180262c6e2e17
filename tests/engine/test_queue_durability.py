"""Durability (issue 5 proof): ``iii-asgi engine --data-dir`` killed with SIGKILL while 1,000
queued messages are being processed; after a restart every message is processed at least once
and none is lost."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from iii import InitOptions, ReconnectionConfig, TriggerAction, register_worker
from tests.helpers import call_until_found, wait_for
from tests.processes import PATIENCE, Lines, kill_group, popen

REPO = Path(__file__).resolve().parents[2]
TOTAL = 1000


class EngineProcess:
    """``python -m iii_asgi engine`` in a subprocess (its own process group); ``url`` read from
    its banner line."""

    def __init__(self, data_dir: Path, port: int = 0) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.log_path = data_dir / f"engine-{port}.log"
        with open(self.log_path, "w") as log:
            self.proc = popen(
                [
                    sys.executable,
                    "-m",
                    "iii_asgi",
                    "engine",
                    "--port",
                    str(port),
                    "--http-port",
                    "off",
                    "--stream-port",
                    "off",
                    "--data-dir",
                    str(data_dir),
                ],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=env,
            )
        self.out = Lines(self.proc.stdout, "engine stdout")
        try:
            banner = self.out.wait_for(r"listening on (ws://\S+)")
        except AssertionError as exc:
            self.stop()
            log_text = self.log_path.read_text()
            raise AssertionError(f"engine did not start: {exc}\n{log_text}") from None
        self.url = banner[1]
        self.port = int(self.url.rsplit(":", 1)[1])

    def kill(self) -> None:
        """SIGKILL the engine (no shutdown at all) and wait for it."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(PATIENCE)

    def stop(self) -> None:
        kill_group(self.proc)
        self.out.join()


@pytest.fixture
def engines() -> Iterator[list[EngineProcess]]:
    started: list[EngineProcess] = []
    yield started
    for engine in started:
        engine.stop()


def test_sigkill_while_processing_loses_no_message(
    tmp_path: Path, engines: list[EngineProcess]
) -> None:
    first = EngineProcess(tmp_path)
    engines.append(first)
    fast_reconnect = ReconnectionConfig(initial_delay_ms=50, max_delay_ms=200)
    options = InitOptions(worker_name="durable-worker", reconnection_config=fast_reconnect)
    worker = register_worker(first.url, options)
    caller = register_worker(
        first.url, InitOptions(worker_name="durable-caller", reconnection_config=fast_reconnect)
    )
    try:
        processed: set[int] = set()
        calls = 0
        lock = threading.Lock()
        go = threading.Event()

        async def record(data: dict[str, Any]) -> None:
            nonlocal calls
            if data["i"] < 0:  # the warm-up call
                return
            while not go.is_set():  # the first deliveries wait: a backlog builds up
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.005)
            with lock:
                calls += 1
                processed.add(data["i"])

        worker.register_function("jobs::record", record)
        call_until_found(caller, {"function_id": "jobs::record", "payload": {"i": -1}})
        for i in range(TOTAL):
            caller.trigger(
                {
                    "function_id": "jobs::record",
                    "payload": {"i": i},
                    "action": TriggerAction.Enqueue(queue="default"),
                }
            )
        go.set()
        wait_for(lambda: len(processed) >= 100)
        first.kill()
        done_before = len(processed)
        assert done_before < TOTAL, "everything was processed before the kill"
        print(f"processed before the kill: {done_before}")

        second = EngineProcess(tmp_path, first.port)
        engines.append(second)
        wait_for(lambda: len(processed) == TOTAL, timeout=PATIENCE)
        assert processed == set(range(TOTAL))
        stats = caller.trigger(
            {"function_id": "engine::queue::topic_stats", "payload": {"topic": "default"}}
        )
        assert stats["dlq_depth"] == 0
        wait_for(
            lambda: (
                caller.trigger(
                    {"function_id": "engine::queue::topic_stats", "payload": {"topic": "default"}}
                )["depth"]
                == 0
            ),
        )
        assert calls >= TOTAL  # at least once; redeliveries after the kill are allowed
        print(f"handler calls: {calls}")
    finally:
        worker.shutdown()
        caller.shutdown()
