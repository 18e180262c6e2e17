"""State built-in throughput: the in-memory store vs the SQLite file store, one run.

One engine process per store (``iii-asgi engine``, then ``--data-dir`` in a temporary
directory); a raw WebSocket worker sends ``state::set``, ``state::get`` and ``state::update``
(one increment op) calls with 1 and 64 in flight and counts completed calls per second. Both
engines run at once and the cases alternate between them, over several rounds; prints the
median and range per store and the ratio sqlite/memory.

    python bench/state.py [--calls 5000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rates: dict[tuple[str, str, int], list[float]] = {}
    cases = [(k, n) for k in ("state::set", "state::get", "state::update") for n in (1, 64)]
    with tempfile.TemporaryDirectory() as data:
        engines = {"memory": start_engine(), "sqlite": start_engine("--data-dir", data)}
        try:
            for _ in range(args.rounds):  # interleaved, so both stores see the same machine load
                for kind, inflight in cases:
                    for store, (_, url) in engines.items():
                        rate = asyncio.run(run(url, kind, args.calls, inflight))
                        rates.setdefault((store, kind, inflight), []).append(rate)
        finally:
            for proc, _ in engines.values():
                proc.terminate()
                proc.wait(timeout=20)
    print(
        f"{args.calls} calls per case, {args.rounds} interleaved rounds; median (min-max) calls/s"
    )
    for kind, inflight in cases:
        cells = []
        for store in ("memory", "sqlite"):
            r = sorted(rates[(store, kind, inflight)])
            cells.append(f"{store} {statistics.median(r):>6.0f} ({r[0]:.0f}-{r[-1]:.0f})")
        ratios = [
            s / m
            for s, m in zip(
                rates[("sqlite", kind, inflight)], rates[("memory", kind, inflight)], strict=True
            )
        ]
        print(
            f"{kind:<14} in-flight={inflight:<3} {cells[0]:>24}  {cells[1]:>24}  "
            f"sqlite/memory {statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"
        )


if __name__ == "__main__":
    main()
