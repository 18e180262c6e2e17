"""``InitOptions.max_concurrent_handlers`` (issue 13): handlers running at once, a backlog of
frames behind them, handlers waiting on their own calls not counted, the capacity told to the
engine, and the engine's stop notice cancelling a handler."""

from __future__ import annotations

import asyncio
from typing import Any

import iii
from iii.errors import IIIInvocationError
from tests.helpers import acall_until_found as call_until_found


async def test_at_most_max_concurrent_handlers_run(engine: Any) -> None:
    client = iii.III(engine.url, iii.InitOptions(max_concurrent_handlers=2))
    gate = asyncio.Event()
    running = {"now": 0, "peak": 0}

    async def work(data: Any) -> Any:
        running["now"] += 1
        running["peak"] = max(running["peak"], running["now"])
        await gate.wait()
        running["now"] -= 1
        return data

    client.register_function("limits::work", work)
    client.register_function("limits::ping", lambda data: "pong")
    await client.connect()
    try:
        assert await call_until_found(client, {"function_id": "limits::ping"}) == "pong"
        calls = [
            asyncio.ensure_future(client.call("limits::work", {"i": i}, timeout=10))
            for i in range(10)
        ]
        for _ in range(100):
            if running["now"] == 2:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        assert running == {"now": 2, "peak": 2}
        # The engine was told: 2 × 2 in flight; the rest are refused at once.
        codes = {c.exception().code for c in calls if c.done() and c.exception()}  # type: ignore[union-attr]
        assert codes <= {"WORKER_BACKPRESSURE"}
        assert sum(1 for c in calls if c.done()) == 6
        gate.set()
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        served = [o for o in outcomes if not isinstance(o, BaseException)]
        assert sorted(o["i"] for o in served) == [0, 1, 2, 3]
        assert all(
            isinstance(o, IIIInvocationError) and o.code == "WORKER_BACKPRESSURE"
            for o in outcomes[4:]
        )
        assert running["peak"] == 2
    finally:
        await client.shutdown_async()


async def test_a_handler_waiting_on_its_own_call_frees_its_slot(engine: Any) -> None:
    """With one slot, a handler that calls another function of the same worker does not
    deadlock: while it waits, the callee runs."""
    client = iii.III(engine.url, iii.InitOptions(max_concurrent_handlers=1))

    async def outer(data: Any) -> Any:
        return {"inner": await client.call("limits::inner", data, timeout=5)}

    client.register_function("limits::outer", outer)
    client.register_function("limits::inner", lambda data: data["n"] + 1)
    await client.connect()
    try:
        await call_until_found(client, {"function_id": "limits::inner", "payload": {"n": 0}})
        for n in range(3):  # (the engine holds 2 in flight for this worker: outer and inner)
            assert await client.call("limits::outer", {"n": n}, timeout=10) == {"inner": n + 1}
    finally:
        await client.shutdown_async()


async def test_the_engines_stop_notice_cancels_the_handler(engine: Any) -> None:
    client = iii.III(engine.url)
    cancelled = asyncio.Event()

    async def forever(data: Any) -> Any:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    client.register_function("limits::forever", forever)
    client.register_function("limits::ping", lambda data: "pong")
    await client.connect()
    try:
        await call_until_found(client, {"function_id": "limits::ping"})
        try:
            await client.call("limits::forever", {}, timeout=0.3)
        except IIIInvocationError as exc:
            assert exc.code == "TIMEOUT"
        await asyncio.wait_for(cancelled.wait(), 5)
        assert not engine.core.invoker.pending
    finally:
        await client.shutdown_async()
