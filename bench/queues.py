"""Queue benchmark: TriggerAction.Enqueue → handler throughput, in-memory store vs file store.

One engine subprocess per round (``iii-asgi engine``, plus ``--data-dir`` for the SQLite file
store); one caller and one worker (our SDK) in this process. The caller enqueues ``--messages``
calls to the ``default`` queue (concurrency 10, builtins.md §7.2) with ``--in-flight`` enqueues
outstanding; the worker's ``bench::sink`` counts deliveries. Reported per store:

* enqueue/s: receipts per second (each message stored before its receipt);
* end-to-end/s: messages per second from the first enqueue to the last delivery.

Rounds alternate memory / file so both see the same machine noise; the table shows the median
and range over rounds, and the ratio file/memory.
OTel is off (``OTEL_ENABLED=false``) unless set otherwise.

    python bench/queues.py [--messages 3000] [--rounds 3] [--in-flight 64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# this directory holds http.py: keep it off the path so the standard library wins
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OTEL_ENABLED", "false")  # as in bench/invoke.py: measure the queue only

import iii  # noqa: E402
from bench._common import start_engine  # noqa: E402
from iii import InitOptions, TriggerAction  # noqa: E402


async def one_round(data_dir: str | None, messages: int, in_flight: int) -> tuple[float, float]:
    proc, url = start_engine(*(["--data-dir", data_dir] if data_dir is not None else []))
    worker = iii.III(url, InitOptions(worker_name="bench-queue-worker"))
    caller = iii.III(url, InitOptions(worker_name="bench-queue-caller"))
    try:
        await worker.connect()
        await caller.connect()
        done = asyncio.Event()
        count = 0

        async def sink(data: Any) -> None:
            nonlocal count
            count += 1
            if count == messages:
                done.set()

        worker.register_function("bench::sink", sink)
        while True:  # the registration is a fire-and-forget frame: wait until it is in
            try:
                await caller.trigger_async({"function_id": "bench::sink", "payload": 0})
                break
            except iii.IIIInvocationError:
                await asyncio.sleep(0.01)
        count = 0
        gate = asyncio.Semaphore(in_flight)

        async def enqueue(i: int) -> None:
            async with gate:
                await caller.trigger_async(
                    {
                        "function_id": "bench::sink",
                        "payload": {"i": i},
                        "action": TriggerAction.Enqueue(queue="default"),
                    }
                )

        start = time.perf_counter()
        await asyncio.gather(*(enqueue(i) for i in range(messages)))
        enqueued = time.perf_counter() - start
        await asyncio.wait_for(done.wait(), 300)
        total = time.perf_counter() - start
        return messages / enqueued, messages / total
    finally:
        await caller.shutdown_async()
        await worker.shutdown_async()
        proc.terminate()
        proc.wait(10)


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):8.0f}  ({min(values):.0f}–{max(values):.0f})"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--in-flight", type=int, default=64)
    args = parser.parse_args()
    results: dict[str, list[tuple[float, float]]] = {"memory": [], "file": []}
    for _ in range(args.rounds):
        results["memory"].append(await one_round(None, args.messages, args.in_flight))
        with tempfile.TemporaryDirectory(prefix="iii-bench-queue-") as data_dir:
            results["file"].append(await one_round(data_dir, args.messages, args.in_flight))
    print(
        f"{args.messages} messages, {args.in_flight} enqueues in flight, queue 'default' "
        f"(concurrency 10), {args.rounds} rounds: median (range)"
    )
    print(f"{'store':8} {'enqueue/s':>24} {'end-to-end/s':>24}")
    for store, rows in results.items():
        print(f"{store:8} {summary([r[0] for r in rows]):>24} {summary([r[1] for r in rows]):>24}")
    mem = [statistics.median(r[k] for r in results["memory"]) for k in (0, 1)]
    fil = [statistics.median(r[k] for r in results["file"]) for k in (0, 1)]
    print(f"{'file/mem':8} {fil[0] / mem[0]:24.2f} {fil[1] / mem[1]:24.2f}")


if __name__ == "__main__":
    asyncio.run(main())
