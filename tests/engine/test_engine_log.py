"""``engine::log::{trace,debug,info,warn,error}`` (builtins.md §12): into the engine's log store
(read back with ``engine::logs::list``) and the process log, bounded."""

from __future__ import annotations

import logging

import pytest
from engine_wire import Wire

from iii_asgi.engine import EngineThread
from iii_asgi.engine.workers.observability.logs import LIMITS

TRACE = "4BF92F3577B34DA6A3CE929D0E0E4736"


async def test_each_level_lands_in_the_log_store(
    engine: EngineThread, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="iii_asgi.engine.log")
    wire = await Wire.connect(engine.url, name="logger")
    levels = ["trace", "debug", "info", "warn", "error"]
    for level in levels:
        data = {
            "message": f"{level} message",
            "data": {"order": 7, "level": level},
            "trace_id": TRACE,
            "span_id": "00F067AA0BA902B7",
            "service_name": "billing",
        }
        assert await wire.result(f"engine::log::{level}", data) is None
    listed = await wire.result("engine::logs::list", {"trace_id": TRACE.lower()})
    assert listed["total"] == 5
    newest_first = listed["logs"]
    assert [r["severity_text"] for r in newest_first] == ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"]
    assert [r["severity_number"] for r in newest_first] == [17, 13, 9, 5, 1]
    info = newest_first[2]
    assert info["body"] == "info message"
    assert info["attributes"] == {"order": 7, "level": "info"}
    assert (info["trace_id"], info["span_id"]) == (TRACE.lower(), "00f067aa0ba902b7")
    assert info["service_name"] == "billing"
    assert info["resource"] == {"service.name": "billing", "iii.worker.id": wire.worker_id}
    assert info["timestamp_unix_nano"] > 0
    warnings = await wire.result("engine::logs::list", {"severity_min": 13})
    assert [r["body"] for r in warnings["logs"]] == ["error message", "warn message"]
    by_service = await wire.result("engine::logs::list", {"service_name": "billing"})
    assert by_service["total"] == 5
    # the process log: one line per call, at the matching level
    records = [r for r in caplog.records if r.name == "iii_asgi.engine.log"]
    assert [r.levelno for r in records] == [10, 10, 20, 30, 40]
    assert "[billing] info message" in records[2].getMessage()


async def test_bad_input_and_bounds(engine: EngineThread, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="iii_asgi.engine.log")
    wire = await Wire.connect(engine.url, name="logger")
    missing = await wire.call("engine::log::info", {"data": {}})
    assert missing["error"]["code"] == "deserialization_error"
    assert missing["error"]["message"].endswith("missing field `message`")
    wrong = await wire.call("engine::log::warn", {"message": 3})
    assert wrong["error"]["code"] == "deserialization_error"
    huge = "x" * 100_000
    await wire.result(
        "engine::log::info",
        {
            "message": huge + "\nforged line",
            "data": {f"k{i}": huge for i in range(100)},
            "service_name": "s" * 1000,
        },
    )
    [record] = (await wire.result("engine::logs::list", {}))["logs"]
    assert len(record["body"]) < LIMITS["message"] + 20
    assert record["body"].endswith("…[truncated]")
    assert len(record["attributes"]) == LIMITS["keys"]
    assert all(len(v) < LIMITS["value"] + 20 for v in record["attributes"].values())
    assert len(record["service_name"]) < LIMITS["id"] + 20
    assert record["resource"]["iii.worker.id"] == wire.worker_id  # not forgeable by the caller
    [line] = [r.getMessage() for r in caplog.records if r.name == "iii_asgi.engine.log"]
    assert "\n" not in line and len(line) < 4 * LIMITS["process_log"]
    # a non-object data is kept whole under one attribute; no data, no attributes
    await wire.result("engine::log::debug", {"message": "list", "data": [1, 2]})
    await wire.result("engine::log::debug", {"message": "none"})
    newest = (await wire.result("engine::logs::list", {"limit": 2}))["logs"]
    assert [(r["body"], r["attributes"]) for r in newest] == [
        ("none", {}),
        ("list", {"data": [1, 2]}),
    ]
    assert newest[0]["service_name"] == "unknown"


async def test_log_functions_are_built_ins(engine: EngineThread) -> None:
    wire = await Wire.connect(engine.url, name="w")
    listed = await wire.result("engine::functions::list", {"prefix": "engine::log::"})
    assert listed == {"functions": []}  # internal: hidden by default (builtins.md §10.1)
    listed = await wire.result(
        "engine::functions::list", {"prefix": "engine::log::", "include_internal": True}
    )
    assert sorted(f["function_id"] for f in listed["functions"]) == [
        "engine::log::debug",
        "engine::log::error",
        "engine::log::info",
        "engine::log::trace",
        "engine::log::warn",
    ]
