"""Durability on Redis: state, stream items and queued messages written through an engine
process survive its SIGKILL and are served by a second engine on the same Redis; messages the
killed engine had taken are delivered again once their visibility timeout passes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from engine_wire import Wire

from iii_asgi.engine import EngineThread
from tests.redis_server import redis_options

ROOT = Path(__file__).resolve().parents[2]
TOTAL = 20  # queued messages; the default queue runs 10 at once


@contextmanager
def engine_process(config: Path, log: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``iii-asgi engine --config <config> --port 0`` in its own process group; yields it and
    its worker URL; the group is killed at the end."""
    with open(log, "w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "iii_asgi", "engine", "--config", str(config), "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            started = "listening on ws://" in line
            assert started, f"engine did not start: {line!r}\n{log.read_text()}"
            yield proc, line.split("listening on ", 1)[1].strip()
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
            if proc.stdout is not None:
                proc.stdout.close()


def redis_config(tmp_path: Path, url: str) -> Path:
    """A config file with every built-in on Redis (no HTTP port, a stream socket on any)."""

    def on_redis(**extra: Any) -> dict[str, Any]:
        return {"adapter": {"name": "redis", "config": {"redis_url": url, **extra}}}

    workers = [
        {"name": "iii-worker-manager", "config": {"host": "127.0.0.1"}},
        {"name": "iii-state", "config": on_redis()},
        {"name": "iii-stream", "config": {"port": 0, **on_redis()}},
        {"name": "iii-queue", "config": on_redis(visibility_timeout_ms=1500)},
        {"name": "iii-pubsub", "config": on_redis()},
        {"name": "iii-cron", "config": on_redis()},
    ]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"workers": workers}))
    return path


async def test_writes_survive_sigkill_and_a_second_engine_serves_them(
    tmp_path: Path, redis_url: str, engine_factory: Callable[..., EngineThread]
) -> None:
    item = {"stream_name": "todo", "group_id": "inbox", "item_id": "t1"}
    with engine_process(redis_config(tmp_path, redis_url), tmp_path / "a.log") as (proc, url):
        wire = await Wire.connect(url)
        for i in range(20):
            await wire.result("state::set", {"scope": "orders", "key": f"o{i}", "value": {"i": i}})
        increment = [{"type": "increment", "path": "i", "by": 5}]
        await wire.result("state::update", {"scope": "orders", "key": "o0", "ops": increment})
        await wire.result("state::delete", {"scope": "orders", "key": "o1"})
        await wire.result("stream::set", {**item, "data": {"title": "milk"}})
        holder = await Wire.connect(url, name="holder")  # takes jobs and never answers
        await holder.send({"type": "registerfunction", "id": "w::job"})
        await holder.sync()
        enqueue = {"type": "enqueue", "queue": "default"}
        for n in range(TOTAL):
            frame = await wire.call("w::job", {"n": n}, action=enqueue)
            assert "messageReceiptId" in frame["result"], frame
        taken = [await holder.recv_type("invokefunction", timeout=10) for _ in range(10)]
        assert len(taken) == 10
        os.killpg(proc.pid, signal.SIGKILL)  # no shutdown: leases are not released
        proc.wait(10)
    engine = engine_factory(**redis_options(redis_url))
    reader = await Wire.connect(engine.url)
    assert await reader.result("state::get", {"scope": "orders", "key": "o0"}) == {"i": 5}
    values = await reader.result("state::list", {"scope": "orders"})
    assert values == [{"i": 5}] + [{"i": i} for i in range(2, 20)]
    assert await reader.result("stream::get", item) == {"title": "milk"}
    assert await reader.result("stream::list_groups", {"stream_name": "todo"}) == ["inbox"]
    worker = await Wire.connect(engine.url, name="worker")
    await worker.send({"type": "registerfunction", "id": "w::job"})
    seen: set[int] = set()

    async def serve() -> None:
        while len(seen) < TOTAL:
            call: dict[str, Any] = await worker.recv_type("invokefunction", timeout=30)
            seen.add(call["data"]["n"])
            await worker.send(
                {"type": "invocationresult", "invocation_id": call["invocation_id"], "result": 1}
            )

    await asyncio.wait_for(serve(), 60)  # the taken ten come back after the 1.5 s timeout
    assert seen == set(range(TOTAL))
    stats = await reader.result("engine::queue::topic_stats", {"topic": "default"})
    deadline = asyncio.get_running_loop().time() + 10
    while stats["depth"]:
        assert asyncio.get_running_loop().time() < deadline, stats
        await asyncio.sleep(0.05)
        stats = await reader.result("engine::queue::topic_stats", {"topic": "default"})
