"""Interop: the official iii-sdk 0.25.0 with OpenTelemetry on, against our engine. Its `/otel`
frames land in our store, and its handler span continues our trace (protocol.md §1.11, §3.6)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

import iii
from iii import InitOptions
from iii.observability import with_span
from iii_asgi.engine import EngineThread
from tests.helpers import acall_until_found
from tests.observability.conftest import Otel
from tests.official import run_official

pytestmark = pytest.mark.interop

OFFICIAL_TRACED = """
import os, time
from iii import InitOptions, register_worker
from iii_helpers.observability import Logger

client = register_worker(os.environ["III_URL"], InitOptions(worker_name="official-otel"))

def traced(data):
    Logger().info("official says hi", {"n": data["n"]})
    return {"n": data["n"]}

client.register_function("official::traced", traced)
print("READY", flush=True)
time.sleep(120)
"""


async def query(client: iii.III, function_id: str, payload: dict[str, Any], key: str) -> Any:
    """Poll an engine telemetry function until its ``key`` list is non-empty."""
    for _ in range(500):
        found = (await client.trigger_async({"function_id": function_id, "payload": payload}))[key]
        if found:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"{function_id} {payload} stayed empty")


async def test_official_worker_spans_and_logs_reach_our_store_in_our_trace(
    engine_factory: Callable[..., EngineThread], otel_factory: Callable[..., Otel]
) -> None:
    engine = engine_factory(tracing=True)
    otel_factory(engine_ws_url=engine.url)
    env = {"OTEL_ENABLED": "true", "OTEL_SERVICE_NAME": "official-worker"}
    with run_official(OFFICIAL_TRACED, engine.url, env=env) as official:
        await asyncio.to_thread(official.wait_for, "READY")
        client = iii.III(engine.url, InitOptions(worker_name="ours"))
        await client.connect()
        try:
            request = {"function_id": "official::traced", "payload": {"n": 1}}
            await acall_until_found(client, request)

            async def call(span: Any) -> Any:
                return await client.trigger_async({**request, "payload": {"n": 7}})

            assert await with_span("ours", call) == {"n": 7}
            (ours,) = [
                s
                for s in await query(client, "engine::traces::list", {"name": "ours"}, "spans")
                if s["name"] == "ours"
            ]
            trace_id = ours["trace_id"]

            def official_span(spans: list[dict[str, Any]]) -> bool:
                return any(s["service_name"] == "official-worker" for s in spans)

            for _ in range(500):
                spans = await query(client, "engine::traces::list", {"trace_id": trace_id}, "spans")
                if official_span(spans):
                    break
                await asyncio.sleep(0.02)
            by_name = {s["name"]: s for s in spans}
            invoke = by_name["invoke official::traced"]
            executed = by_name["execute official::traced"]
            assert invoke["parent_span_id"] == ours["span_id"]
            assert executed["parent_span_id"] == invoke["span_id"]  # the official SDK's span
            assert executed["service_name"] == "official-worker"
            logs = await query(client, "engine::logs::list", {"trace_id": trace_id}, "logs")
            assert [r["body"] for r in logs] == ["official says hi"]
            assert logs[0]["span_id"] == executed["span_id"]
            assert logs[0]["service_name"] == "official-worker"
            assert engine.workers.observability.store.frames_dropped == 0
        finally:
            await client.shutdown_async()
