"""Frames to a worker socket are written at once while its writer task is idle (the protocol's
``iii.send_now``), and queued behind the writer otherwise: either way in order (issue 17)."""

from __future__ import annotations

import asyncio
from typing import Any

from engine_wire import Wire

from iii_asgi.engine.core.connection import WorkerConnection


async def test_frames_keep_their_order_written_at_once_or_queued(engine_factory: Any) -> None:
    engine = engine_factory()
    executor = await Wire.connect(engine.url, name="executor")
    await executor.send({"type": "registerfunction", "id": "order::echo"})
    await executor.sync()
    caller = await Wire.connect(engine.url, name="caller")
    workers = engine.core.registry.workers.values()
    sockets = [conn for conn in workers if type(conn) is WorkerConnection]
    assert len(sockets) == 2 and all(conn._send_now is not None for conn in sockets)
    target = next(conn for conn in sockets if conn.name == "executor")
    at_once = 0
    send_now = target._send_now
    assert send_now is not None

    def counted_send_now(text: str) -> bool:
        nonlocal at_once
        written = send_now(text)
        at_once += written
        return written

    target._send_now = counted_send_now

    # Small calls while the executor reads: written at once. Then large ones it does not
    # read for a while: its socket stops taking them and they queue behind the writer task.
    blob = "x" * (100 * 1024)
    sent = [await caller.invoke("order::echo", {"n": n}) for n in range(50)]
    sent += [await caller.invoke("order::echo", {"n": n, "blob": blob}) for n in range(50, 150)]
    await asyncio.sleep(0.5)
    received: list[dict[str, Any]] = []
    while len(received) < len(sent):
        frame = await executor.recv_type("invokefunction", timeout=10)
        received.append(frame)
        await executor.send(
            {
                "type": "invocationresult",
                "invocation_id": frame["invocation_id"],
                "result": {"n": frame["data"]["n"]},
            }
        )
    assert [frame["data"]["n"] for frame in received] == list(range(150))
    results = [await caller.recv_type("invocationresult", timeout=10) for _ in sent]
    assert [r["invocation_id"] for r in results] == sent
    assert [r["result"]["n"] for r in results] == list(range(150))
    # both ways were taken: the small calls at once, some large ones behind the writer
    assert 50 <= at_once < 150, at_once
