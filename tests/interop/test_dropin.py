"""Issue 14 end to end: ``dropin_worker.py``, written only with the official 0.25 import paths,
runs unchanged on our SDK and on the official one, against our embedded engine, and serves the
same answers: a streamed and a buffered HTTP route, a custom trigger type, a custom stream, a
state trigger and a pubsub subscriber.

Each worker is a subprocess (our venv's Python, then the official venv's) in its own session;
its process group is killed in a ``finally``. A client of ours in the test process drives both.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

import iii
from iii_asgi.engine import EngineThread
from tests.helpers import acall_until_found, poll
from tests.official import OfficialProcess, official_python
from tests.processes import kill_group, popen

pytestmark = pytest.mark.interop

WORKER = Path(__file__).with_name("dropin_worker.py")


def start_worker(python: str, engine: EngineThread) -> OfficialProcess:
    """Run ``dropin_worker.py`` with ``python`` in a new session (``III_URL`` = the engine)."""
    env = {**os.environ, "III_URL": engine.url, "OTEL_ENABLED": "false", "PYTHONUNBUFFERED": "1"}
    env.pop("PYTHONPATH", None)
    proc = popen(
        [python, str(WORKER)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd="/",  # never import this repository's iii from the working directory
    )
    return OfficialProcess(proc)


def stop_worker(worker: OfficialProcess) -> None:
    kill_group(worker.proc)
    for stream in (worker.proc.stdout, worker.proc.stderr):
        if stream is not None:
            stream.close()


async def exercise(engine: EngineThread, python: str) -> dict[str, Any]:
    """Start the worker under ``python``, drive every feature, return what came back."""
    worker = start_worker(python, engine)
    client = iii.III(engine.url)
    try:
        await asyncio.to_thread(worker.wait_for, "READY", 60)
        await client.connect()

        async def call(function_id: str, payload: Any) -> Any:
            request = {"function_id": function_id, "payload": payload}
            return await acall_until_found(client, request, timeout=20)

        async def report() -> Any:
            return await call("dropin::report", None)

        await call("dropin::report", None)  # every registration has reached the engine
        out: dict[str, Any] = {}
        async with httpx.AsyncClient(base_url=engine.http_url, timeout=10) as http:
            streamed = await poll(
                lambda: http.post("/dropin/bob", content=b"abc"),
                lambda r: r.status_code != 404,
            )
            out["http_streamed"] = [
                streamed.status_code,
                streamed.headers.get("content-type"),
                streamed.headers.get("x-name"),
                streamed.text,
            ]
            buffered = await http.get("/dropin-hello", params={"x": "1"})
            out["http_buffered"] = [buffered.status_code, buffered.json()]

        out["trigger_type"] = await poll(lambda: call("dropin::fire", {"n": 1}), bool)

        mem = {"stream_name": "dropin-mem", "group_id": "g"}
        out["stream"] = [
            await call("stream::set", {**mem, "item_id": "i1", "data": {"v": 1}}),
            await call("stream::set", {**mem, "item_id": "i1", "data": {"v": 2}}),
            await call("stream::get", {**mem, "item_id": "i1"}),
            await call("stream::list", mem),
            await call("stream::list_groups", {"stream_name": "dropin-mem"}),
            await call("stream::delete", {**mem, "item_id": "i1"}),
            await call("stream::get", {**mem, "item_id": "i1"}),
        ]

        state = {"scope": "dropin", "key": "k1"}
        await call("state::set", {**state, "value": {"v": 1}})
        await call("state::set", {**state, "value": {"v": 2}})
        await call("state::delete", state)
        await call("publish", {"topic": "dropin-topic", "data": {"n": 1}})
        await call("publish", {"topic": "dropin-topic", "data": {"n": 2}})
        out["events"] = await poll(report, lambda r: len(r["state"]) >= 3 and len(r["pubsub"]) >= 2)
        return out
    finally:
        try:
            await client.shutdown_async()
        finally:
            stop_worker(worker)


async def test_official_worker_code_runs_unchanged_on_both_sdks(
    engine_factory: Callable[..., EngineThread],
) -> None:
    ours = await exercise(engine_factory(), sys.executable)
    official = await exercise(engine_factory(), str(official_python()))

    assert ours["http_streamed"] == [201, "text/plain", "bob", "hello bob: cba"]
    assert ours["http_buffered"] == [202, {"query": {"x": "1"}}]
    assert ours["trigger_type"] == [{"ticked": "a", "n": 1}]
    assert ours["stream"] == [
        {"old_value": None, "new_value": {"v": 1}},
        {"old_value": {"v": 1}, "new_value": {"v": 2}},
        {"v": 2},
        [{"v": 2}],
        ["g"],
        {"old_value": {"v": 2}},
        None,
    ]
    events = ours["events"]
    assert [e["event_type"] for e in events["state"]] == [
        "state:created",
        "state:updated",
        "state:deleted",
    ]
    assert events["pubsub"] == [{"n": 1}, {"n": 2}]
    assert events["tick"] == [{"label": "a", "n": 1}]
    assert "stream::get(dropin-mem)" in events["functions"]
    assert ours == official
