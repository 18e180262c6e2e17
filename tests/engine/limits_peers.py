"""Peer processes for the limit tests (tests/engine/test_socket_limits.py) and bench/limits.py.

Run as ``python tests/engine/limits_peers.py ROLE URL [ARGS...]``; each role prints ``READY``
once connected, then JSON lines (the last one is its report). Roles:

- ``steady URL SECONDS RATE``: a well-behaved worker calling its own ``steady::echo`` RATE
  times a second for SECONDS; reports ``{"calls", "errors", "p50_ms", "p99_ms", "codes"}``.
- ``stuck URL SECONDS``: registers ``stuck::block``, an async handler that blocks its event
  loop with ``time.sleep(SECONDS)`` (the worker stops reading its socket), and ``stuck::ok``.
- ``slow URL PER_CALL_MS [SERIAL]``: registers ``slow::work`` (``asyncio.sleep`` per call; with
  SERIAL ``1`` one call at a time) and ``slow::ok``; each ``status`` line on its stdin gets a
  report ``{"rss_mb", "rss_peak_mb", "started", "running", "peak", "done", "cancelled"}``.
- ``flood URL FUNCTION COUNT``: sends COUNT ``invokefunction`` frames as fast as the socket
  takes them on a raw socket and reads the answers for 3 s more; reports ``{"sent",
  "answered", "codes", "refusal_ms_max"}`` (the slowest answer of a refused call, from its
  send).
- ``bigframes URL SOCKETS MIB``: opens SOCKETS raw sockets that each send one MIB-MiB
  ``invokefunction`` at once; reports how each ended (``answered`` or the close code).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
import uuid
from typing import Any

from iii import InitOptions, register_worker
from iii.errors import IIIInvocationError

#: The worker name prefix of every peer (one process each).
NAME = "limits-peer"


def rss_mb(pid: int | str = "self") -> float:
    """Resident set size of process ``pid`` in MB (``/proc/<pid>/status`` VmRSS)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def say(obj: Any) -> None:
    print(obj if isinstance(obj, str) else json.dumps(obj), flush=True)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def steady(url: str, seconds: str, rate: str) -> None:
    client = register_worker(url, InitOptions(worker_name=f"{NAME}-steady-{os.getpid()}"))
    client.register_function("steady::echo", lambda data: data)
    period = 1 / float(rate)
    latencies: list[float] = []
    codes: dict[str, int] = {}
    client.trigger({"function_id": "steady::echo", "payload": {"warm": 1}})  # registered
    say("READY")
    end = time.monotonic() + float(seconds)
    next_at = time.monotonic()
    while time.monotonic() < end:
        started = time.monotonic()
        try:
            client.trigger({"function_id": "steady::echo", "payload": {"n": 1}, "timeout_ms": 5000})
        except IIIInvocationError as exc:
            codes[exc.code] = codes.get(exc.code, 0) + 1
        latencies.append((time.monotonic() - started) * 1000)
        next_at += period
        time.sleep(max(0.0, next_at - time.monotonic()))
    errors = sum(codes.values())
    say(
        {
            "calls": len(latencies),
            "errors": errors,
            "codes": codes,
            "p50_ms": round(percentile(latencies, 0.5), 2),
            "p99_ms": round(percentile(latencies, 0.99), 2),
        }
    )
    client.shutdown()


def stuck(url: str, seconds: str) -> None:
    client = register_worker(url, InitOptions(worker_name=f"{NAME}-stuck-{os.getpid()}"))

    async def block(data: Any) -> Any:
        time.sleep(float(seconds))  # blocks the loop: the socket is not read meanwhile
        return "woke"

    client.register_function("stuck::block", block)
    client.register_function("stuck::ok", lambda data: "ok")
    client.trigger({"function_id": "stuck::ok", "payload": {}})
    say("READY")
    sys.stdin.read()
    client.shutdown()


def slow(url: str, per_call_ms: str, serial: str = "0") -> None:
    client = register_worker(url, InitOptions(worker_name=f"{NAME}-slow-{os.getpid()}"))
    state = {"started": 0, "running": 0, "peak": 0, "done": 0, "cancelled": 0}
    delay = float(per_call_ms) / 1000
    lock = asyncio.Lock() if serial == "1" else None

    async def work(data: Any) -> Any:
        state["started"] += 1
        state["running"] += 1
        state["peak"] = max(state["peak"], state["running"])
        try:
            if lock is not None:
                async with lock:
                    await asyncio.sleep(delay)
            else:
                await asyncio.sleep(delay)
            state["done"] += 1
            return data
        except asyncio.CancelledError:
            state["cancelled"] += 1
            raise
        finally:
            state["running"] -= 1

    client.register_function("slow::work", work)
    client.register_function("slow::ok", lambda data: "ok")
    client.trigger({"function_id": "slow::ok", "payload": {}})
    peak = [rss_mb()]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], rss_mb())

    threading.Thread(target=sample, daemon=True).start()
    say("READY")
    for line in sys.stdin:
        if line.strip() == "status":
            now = rss_mb()
            say({"rss_mb": round(now, 1), "rss_peak_mb": round(max(peak[0], now), 1), **state})
    done.set()
    client.shutdown()


async def _flood(url: str, function_id: str, count: int) -> None:
    import websockets

    async with websockets.connect(url, max_size=2**26, compression=None) as ws:
        await ws.recv()  # workerregistered
        sent_at: dict[str, float] = {}
        codes: dict[str, int] = {}
        slowest_refusal = 0.0
        answered = 0
        say("READY")

        async def read() -> None:
            nonlocal answered, slowest_refusal
            while answered < count:
                frame = json.loads(await ws.recv())
                if frame.get("type") != "invocationresult":
                    continue
                answered += 1
                error = frame.get("error")
                code = error["code"] if error else "ok"
                codes[code] = codes.get(code, 0) + 1
                started = sent_at.pop(frame["invocation_id"], None)
                if error and started is not None and code != "TIMEOUT":
                    slowest_refusal = max(slowest_refusal, time.monotonic() - started)

        reader = asyncio.ensure_future(read())
        quiet = asyncio.ensure_future(_until_quiet(lambda: answered))
        for n in range(count):
            if n % 64 == 0:
                await asyncio.sleep(0)  # let the reader keep up: a client that never reads its
                # answers is dropped as a slow consumer, which is another test
            inv_id = str(uuid.uuid4())
            sent_at[inv_id] = time.monotonic()
            await ws.send(
                json.dumps(
                    {
                        "type": "invokefunction",
                        "function_id": function_id,
                        "data": {"x": 1},
                        "invocation_id": inv_id,
                        "timeout_ms": 120_000,
                    }
                )
            )
        sent = count
        await asyncio.wait({reader, quiet}, timeout=3, return_when=asyncio.FIRST_COMPLETED)
        reader.cancel()
        quiet.cancel()
        say(
            {
                "sent": sent,
                "answered": answered,
                "codes": codes,
                "refusal_ms_max": round(slowest_refusal * 1000, 1),
            }
        )


async def _until_quiet(answered: Any, seconds: float = 2.0) -> None:
    """Return once ``answered()`` has not changed for ``seconds`` (calls still in flight at
    a slow executor stay unanswered)."""
    last = -1
    while True:
        await asyncio.sleep(seconds)
        if answered() == last:
            return
        last = answered()


def flood(url: str, function_id: str, count: str) -> None:
    asyncio.run(_flood(url, function_id, int(count)))


async def _bigframes(url: str, sockets: int, mib: int) -> None:
    import websockets

    body = json.dumps(
        {
            "type": "invokefunction",
            "function_id": "nobody::big",
            "data": {"blob": "x" * (mib * 1024 * 1024)},
            "invocation_id": str(uuid.uuid4()),
        }
    )
    outcomes: dict[str, int] = {}

    async def one() -> None:
        try:
            async with websockets.connect(url, max_size=2**26, compression=None) as ws:
                await ws.recv()
                await ws.send(body)
                while True:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 60))
                    if frame.get("type") == "invocationresult":
                        outcome = "answered"
                        break
        except websockets.ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else 1006
            outcome = f"closed {code}"
        except Exception as exc:
            outcome = type(exc).__name__
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    say("READY")
    await asyncio.gather(*(one() for _ in range(sockets)))
    say({"outcomes": outcomes})


def bigframes(url: str, sockets: str, mib: str) -> None:
    asyncio.run(_bigframes(url, int(sockets), int(mib)))


ROLES = {
    "steady": steady,
    "stuck": stuck,
    "slow": slow,
    "flood": flood,
    "bigframes": bigframes,
}

if __name__ == "__main__":
    os.environ.setdefault("OTEL_ENABLED", "false")
    ROLES[sys.argv[1]](*sys.argv[2:])
