"""The official 0.25 construction pattern (``III(url, options)`` from sync code) and sync
handlers served after the script's main code returned (issue 14)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest

import iii
from iii import InitOptions
from iii._threads import HandlerPool
from iii_asgi.engine import EngineThread
from tests.helpers import call_until_found
from tests.processes import kill_group, popen


def test_iii_used_from_sync_code_connects_on_its_own_loop_thread(engine: EngineThread) -> None:
    client = iii.III(engine.url, InitOptions(worker_name="sync-pattern"))
    assert client.loop is None  # nothing started by construction alone
    try:
        client.register_function("sync::double", lambda data: data["n"] * 2)
        assert client.loop is not None and client.loop is not asyncio_running_loop()
        result = call_until_found(client, {"function_id": "sync::double", "payload": {"n": 21}})
        assert result == 42
    finally:
        client.shutdown()


def asyncio_running_loop() -> object:
    import asyncio

    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


async def test_inside_a_running_loop_connect_still_attaches(engine: EngineThread) -> None:
    import asyncio

    client = iii.III(engine.url)
    client.register_function("sync::attached", lambda data: "ok")
    assert client.loop is None  # no thread started: connect() binds this loop
    await client.connect()
    try:
        assert client.loop is asyncio.get_running_loop()
    finally:
        await client.shutdown_async()


SCRIPT = textwrap.dedent(
    """
    import sys, time
    from iii import InitOptions, register_worker

    client = register_worker(sys.argv[1], InitOptions(worker_name="after-main"))

    def slow_square(data):
        time.sleep(0.01)
        return data["n"] * data["n"]

    client.register_function("after::square", slow_square)
    print("registered", flush=True)
    # main returns here; the client's non-daemon loop thread keeps the process alive
    """
)


def test_sync_handlers_are_served_after_main_returns(engine: EngineThread) -> None:
    proc = popen(
        [sys.executable, "-c", SCRIPT, engine.url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    caller = iii.register_worker(engine.url, InitOptions(worker_name="caller"))
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "registered"
        for n in (3, 4, 5):  # several calls: each runs in the pool after main returned
            result = call_until_found(
                caller, {"function_id": "after::square", "payload": {"n": n}}, timeout=60
            )
            assert result == n * n
        assert proc.poll() is None
    finally:
        caller.shutdown()
        kill_group(proc)
        proc.communicate(timeout=30)


def test_handler_pool_bounds_threads_and_refuses_work_after_shutdown() -> None:
    pool = HandlerPool(2)
    release = threading.Event()
    started = threading.Semaphore(0)

    def block() -> str:
        started.release()
        release.wait(30)
        return threading.current_thread().name

    futures = [pool.submit(block) for _ in range(5)]
    assert started.acquire(timeout=30) and started.acquire(timeout=30)
    assert not started.acquire(timeout=0.2)  # only 2 threads: the others wait in order
    release.set()
    names = {f.result(timeout=30) for f in futures}
    assert len(names) <= 2
    pool.shutdown(cancel_futures=True)
    with pytest.raises(RuntimeError, match="shut down"):
        pool.submit(block)
    with pytest.raises(ValueError):
        HandlerPool(0)
