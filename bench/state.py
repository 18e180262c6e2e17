"""State built-in throughput: the in-memory store vs the SQLite file store vs Redis, one run.

One engine process per store (``iii-asgi engine``; ``--data-dir`` in a temporary directory;
a config file putting ``iii-state`` on the Redis adapter, with a ``redis-server`` started for
the run on a free port, no persistence); a raw WebSocket worker sends ``state::set``,
``state::get`` and ``state::update`` (one increment op) calls with 1 and 64 in flight and counts
completed calls per second. The engines run at once and the cases alternate between them, over
several rounds; prints the median and range per store and each store's ratio to memory.

    python bench/state.py [--calls 5000] [--rounds 3] [--no-redis]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# bench/http.py would shadow the standard library's http (websockets imports it)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

import websockets  # noqa: E402

from bench._common import start_engine  # noqa: E402


def payload(kind: str, i: int) -> dict[str, Any]:
    key = {"scope": "bench", "key": f"k{i % 1000}"}
    if kind == "state::set":
        return {**key, "value": {"i": i, "name": "item", "tags": ["a", "b"]}}
    if kind == "state::update":
        return {**key, "ops": [{"type": "increment", "path": "i", "by": 1}]}
    return key


async def run(url: str, kind: str, calls: int, inflight: int) -> float:
    async with websockets.connect(url, compression=None, max_size=2**26) as ws:
        await ws.recv()  # workerregistered
        window = asyncio.Semaphore(inflight)
        pending: dict[str, asyncio.Future[None]] = {}

        async def reader() -> None:
            async for raw in ws:
                frame = json.loads(raw)
                if frame.get("type") == "invocationresult":
                    if "error" in frame:
                        raise RuntimeError(frame["error"])
                    pending.pop(frame["invocation_id"]).set_result(None)

        task = asyncio.create_task(reader())
        loop = asyncio.get_running_loop()
        start = time.perf_counter()
        futures = []
        for i in range(calls):
            await window.acquire()
            inv = str(uuid.uuid4())
            future = pending[inv] = loop.create_future()
            future.add_done_callback(lambda _: window.release())
            futures.append(future)
            frame = {"type": "invokefunction", "invocation_id": inv, "function_id": kind}
            await ws.send(json.dumps({**frame, "data": payload(kind, i)}))
        await asyncio.gather(*futures)
        elapsed = time.perf_counter() - start
        task.cancel()
        return calls / elapsed


def start_redis(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``redis-server`` on a free port in its own process group (no snapshots)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [
            *("redis-server", "--port", str(port), "--bind", "127.0.0.1"),
            *("--dir", str(directory), "--save", "", "--appendonly", "no"),
        ],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("redis-server did not start") from None
            time.sleep(0.05)
    return proc, f"redis://127.0.0.1:{port}/0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-redis", action="store_true", help="memory and SQLite only")
    args = parser.parse_args()
    rates: dict[tuple[str, str, int], list[float]] = {}
    cases = [(k, n) for k in ("state::set", "state::get", "state::update") for n in (1, 64)]
    with tempfile.TemporaryDirectory() as data:
        engines = {"memory": start_engine(), "sqlite": start_engine("--data-dir", data)}
        redis: subprocess.Popen[bytes] | None = None
        if not args.no_redis:
            redis, url = start_redis(Path(data))
            config = Path(data) / "redis.yaml"
            adapter = f'{{adapter: {{name: redis, config: {{redis_url: "{url}"}}}}}}'
            config.write_text(f"workers:\n  - name: iii-state\n    config: {adapter}\n")
            engines["redis"] = start_engine("--config", str(config))
        try:
            for _ in range(args.rounds):  # interleaved, so every store sees the same load
                for kind, inflight in cases:
                    for store, (_, url) in engines.items():
                        rate = asyncio.run(run(url, kind, args.calls, inflight))
                        rates.setdefault((store, kind, inflight), []).append(rate)
        finally:
            for proc, _ in engines.values():
                proc.terminate()
                proc.wait(timeout=20)
            if redis is not None:
                os.killpg(redis.pid, signal.SIGKILL)
                redis.wait(timeout=20)
    print(
        f"{args.calls} calls per case, {args.rounds} interleaved rounds; median (min-max) calls/s"
    )
    for kind, inflight in cases:
        cells = []
        for store in engines:
            r = sorted(rates[(store, kind, inflight)])
            cells.append(f"{store} {statistics.median(r):>6.0f} ({r[0]:.0f}-{r[-1]:.0f})")
        for store in list(engines)[1:]:
            ratios = [
                s / m
                for s, m in zip(
                    rates[(store, kind, inflight)], rates[("memory", kind, inflight)], strict=True
                )
            ]
            cells.append(
                f"{store}/memory {statistics.median(ratios):.2f}x "
                f"({min(ratios):.2f}-{max(ratios):.2f})"
            )
        print(f"{kind:<14} in-flight={inflight:<3} " + "  ".join(cells))


if __name__ == "__main__":
    main()
