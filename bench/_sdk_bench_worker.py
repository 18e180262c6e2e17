"""Benchmark peer, run under either SDK's interpreter (ours or the official iii-sdk).

``python _sdk_bench_worker.py serve URL``: register ``bench::echo`` and serve until stdin closes.
``python _sdk_bench_worker.py call URL N INFLIGHT MODE``: call ``bench::echo`` N times with
INFLIGHT concurrent calls; print one JSON line {"seconds", "latencies_ms"}. MODE is ``thread``
(register_worker + trigger_async from the main loop), ``sync`` (register_worker + the blocking
``trigger()`` from INFLIGHT plain threads: the loop-thread model from sync code) or
``attached`` (our SDK only: ``III(url)`` + ``await connect()`` on the main loop).
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from typing import Any

from iii import InitOptions, register_worker


async def echo(data: Any) -> Any:
    return data


def serve(url: str) -> None:
    client = register_worker(url, InitOptions(worker_name="bench-executor"))
    client.register_function("bench::echo", echo)
    time.sleep(0.3)
    print("ready", flush=True)
    sys.stdin.read()
    client.shutdown()


async def call(url: str, n: int, inflight: int, mode: str) -> None:
    if mode == "attached":
        from iii import III

        client: Any = III(url, InitOptions(worker_name="bench-caller"))
        await client.connect()
    else:
        client = await asyncio.to_thread(
            register_worker, url, InitOptions(worker_name="bench-caller")
        )
    payload = {"message": "hello", "n": 42, "items": [1, 2, 3]}
    request = {"function_id": "bench::echo", "payload": payload}
    for _ in range(200):  # warm up
        await client.trigger_async(request)
    latencies: list[float] = []
    remaining = n

    async def lane() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            await client.trigger_async(request)
            latencies.append((time.perf_counter() - started) * 1000)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(lane() for _ in range(inflight)))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(json.dumps({"seconds": seconds, "cpu": cpu, "latencies_ms": latencies}), flush=True)
    if mode == "attached":
        await client.shutdown_async()
    else:
        await asyncio.to_thread(client.shutdown)


def call_sync(url: str, n: int, inflight: int) -> None:
    client = register_worker(url, InitOptions(worker_name="bench-caller"))
    payload = {"message": "hello", "n": 42, "items": [1, 2, 3]}
    request = {"function_id": "bench::echo", "payload": payload}
    for _ in range(200):  # warm up
        client.trigger(request)
    latencies: list[float] = []
    lock = threading.Lock()
    remaining = n

    def lane() -> None:
        nonlocal remaining
        while True:
            with lock:
                if remaining <= 0:
                    return
                remaining -= 1
            started = time.perf_counter()
            client.trigger(request)
            latencies.append((time.perf_counter() - started) * 1000)

    threads = [threading.Thread(target=lane) for _ in range(inflight)]
    started, cpu = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(json.dumps({"seconds": seconds, "cpu": cpu, "latencies_ms": latencies}), flush=True)
    client.shutdown()


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2])
    elif sys.argv[5] == "sync":
        call_sync(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        asyncio.run(call(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]))
