"""Reconnect, replay, worker loss mid-call, namespaces and registration conflicts."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import textwrap
import threading
import time
from subprocess import PIPE
from typing import Any

import pytest

import iii
from iii import IIIInvocationError, InitOptions, ReconnectionConfig, register_worker
from iii_asgi.engine import EngineConfig, EngineThread
from tests.helpers import CallInThread, call_until_found, wait_for
from tests.processes import Lines, kill_group, popen

FAST_RECONNECT = ReconnectionConfig(initial_delay_ms=50, max_delay_ms=200, jitter_factor=0.1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_engine_restart_replays_functions_and_fails_in_flight_calls() -> None:
    port = free_port()
    engine = EngineThread(EngineConfig(host="127.0.0.1", port=port, http_port=0))
    engine.start()
    options = InitOptions(worker_name="reconnecting", reconnection_config=FAST_RECONNECT)
    worker = register_worker(engine.url, options)
    caller = register_worker(engine.url, InitOptions(reconnection_config=FAST_RECONNECT))
    states: list[str] = []
    worker.on_connection_state_change(states.append)
    release = threading.Event()
    try:
        worker.register_function("re::echo", lambda d: d)
        worker.register_function("re::hang", lambda d: release.wait(10))
        assert call_until_found(caller, {"function_id": "re::echo", "payload": 1}) == 1
        first_id = worker.worker_id

        call = CallInThread(caller, {"function_id": "re::hang", "payload": {}})
        time.sleep(0.3)
        engine.stop()
        error = call.outcome(5)
        assert isinstance(error, IIIInvocationError)
        assert error.code in ("CONNECTION_LOST", "invocation_stopped")

        engine = EngineThread(EngineConfig(host="127.0.0.1", port=port, http_port=0))
        engine.start()
        assert call_until_found(caller, {"function_id": "re::echo", "payload": 2}, 10) == 2
        wait_for(lambda: worker.worker_id not in (None, first_id))
        assert "reconnecting" in states and states[-1] == "connected"
    finally:
        release.set()
        worker.shutdown()
        caller.shutdown()
        engine.stop()


WORKER_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from iii import register_worker, InitOptions

    def slow(data):
        print("slow started", flush=True)
        time.sleep(300)

    client = register_worker(sys.argv[1], InitOptions(worker_name="doomed"))
    client.register_function("doomed::slow", slow)
    client.register_function("doomed::ready", lambda d: "ready")
    print("registered", flush=True)
    time.sleep(600)
    """
)


def test_worker_killed_mid_call_gives_invocation_stopped(engine: Any, tmp_path: Any) -> None:
    script = tmp_path / "doomed.py"
    script.write_text(WORKER_SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = popen([sys.executable, str(script), engine.url], env=env, stdout=PIPE, text=True)
    out = Lines(proc.stdout, "doomed worker")
    caller = register_worker(engine.url)
    try:
        assert call_until_found(caller, {"function_id": "doomed::ready"}) == "ready"
        call = CallInThread(caller, {"function_id": "doomed::slow", "payload": {}})
        out.wait_for("slow started")  # the call is in the worker: kill it there
        proc.kill()
        error = call.outcome()
        assert isinstance(error, IIIInvocationError)
        assert error.code == "invocation_stopped"
    finally:
        kill_group(proc)
        out.join()
        caller.shutdown()


def test_namespaces(engine: Any) -> None:
    worker = register_worker(engine.url, InitOptions(namespace="orders"))
    caller = register_worker(engine.url)
    try:
        worker.register_function("ns::fn", lambda d: "orders")
        assert (
            call_until_found(caller, {"function_id": "ns::fn", "namespace": "orders"}) == "orders"
        )
        with pytest.raises(IIIInvocationError) as info:
            caller.trigger({"function_id": "ns::fn"})
        assert info.value.code == "function_not_found"
        assert "orders" in info.value.message
        # the worker's own calls resolve in its namespace by default
        assert worker.trigger({"function_id": "ns::fn"}) == "orders"
        with pytest.raises(ValueError):
            caller.trigger({"function_id": "ns::fn", "namespace": " "})
    finally:
        worker.shutdown()
        caller.shutdown()
    with pytest.raises(ValueError):
        iii.III(engine.url, InitOptions(namespace=""))


def test_function_conflict_is_not_fatal(engine: Any, caplog: Any) -> None:
    first = register_worker(engine.url)
    second = register_worker(engine.url)
    try:
        first.register_function("owned::fn", lambda d: "first")
        assert call_until_found(first, {"function_id": "owned::fn"}) == "first"
        second.register_function("owned::fn", lambda d: "second")
        second.register_function("second::own", lambda d: "ok")
        assert call_until_found(second, {"function_id": "second::own"}) == "ok"
        assert second.trigger({"function_id": "owned::fn"}) == "first"
        assert second.get_connection_state() == "connected"
        wait_for(lambda: "FUNCTION" in caplog.text or "owned::fn" in caplog.text)
    finally:
        first.shutdown()
        second.shutdown()


def test_worker_name_conflict_is_fatal(engine: Any) -> None:
    first = register_worker(engine.url, InitOptions(worker_name="unique-name"))
    try:
        wait_for(lambda: first.worker_id is not None)
        time.sleep(0.2)  # let the engine process the first worker's metadata call
        second = iii.III(engine.url, InitOptions(worker_name="unique-name"))

        async def connect() -> None:
            with pytest.raises(iii.RegistrationRejectedError) as info:
                await second.connect()
                for _ in range(100):  # the rejection may land just after connect returns
                    await second.trigger_async({"function_id": "engine::workers::list"})
                    await asyncio.sleep(0.02)
            assert info.value.code == "WORKER_NAMESPACE_CONFLICT"
            assert second.get_connection_state() == "failed"
            with pytest.raises(iii.RegistrationRejectedError):
                await second.trigger_async({"function_id": "engine::workers::list"})
            await second.shutdown_async()

        asyncio.run(connect())
        assert first.trigger({"function_id": "engine::functions::list", "payload": {}})
    finally:
        first.shutdown()
