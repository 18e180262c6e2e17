"""The engine's /otel socket and telemetry store (protocol.md §1.11, builtins.md §12): frames
on /otel and on the control socket, malformed frames, bounds, the query functions' errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
import websockets

from iii_asgi.engine import EngineThread
from iii_asgi.engine.workers.observability.store import TelemetryStore
from tests.helpers import wait_for

TRACE = "5b8efff798038103d269b633813fc60c"


def span_request(trace_id: str, span_id: str, parent: str | None = None, name: str = "s") -> bytes:
    span: dict[str, Any] = {
        "traceId": trace_id,
        "spanId": span_id,
        "name": name,
        "kind": 2,
        "startTimeUnixNano": "1000000",
        "endTimeUnixNano": "3000000",
        "attributes": [
            {"key": "n", "value": {"intValue": "7"}},
            {"key": "l", "value": {"arrayValue": {"values": [{"stringValue": "a"}]}}},
        ],
        "status": {"code": 2, "message": "bad"},
    }
    if parent:
        span["parentSpanId"] = parent
    document = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]
                },
                "scopeSpans": [{"scope": {"name": "test"}, "spans": [span]}],
            }
        ]
    }
    return b"OTLP" + json.dumps(document).encode()


def log_request(body: str, trace_id: str) -> bytes:
    document = {
        "resourceLogs": [
            {
                "resource": {"attributes": []},
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "timeUnixNano": "5",
                                "severityNumber": 9,
                                "severityText": "INFO",
                                "body": {"stringValue": body},
                                "traceId": trace_id,
                                "spanId": "00f067aa0ba902b7",
                            }
                        ]
                    }
                ],
            }
        ]
    }
    return b"LOGS" + json.dumps(document).encode()


async def call(ws: Any, function_id: str, data: Any) -> dict[str, Any]:
    await ws.send(
        json.dumps(
            {
                "type": "invokefunction",
                "function_id": function_id,
                "data": data,
                "invocation_id": "c5f1e7d4-1b0e-4a53-9f63-3c1b8b3f5a11",
            }
        )
    )
    while True:
        frame = json.loads(await ws.recv())
        if frame["type"] == "invocationresult":
            return frame


async def test_frames_on_otel_and_on_the_control_socket_are_queryable(
    engine: EngineThread,
) -> None:
    async with websockets.connect(engine.url + "/otel") as otel:
        await otel.send(span_request(TRACE, "aaaaaaaaaaaaaaaa", name="root"))
        await otel.send("text frames are ignored")
    async with websockets.connect(engine.url) as worker:
        await worker.send(span_request(TRACE, "bbbbbbbbbbbbbbbb", "aaaaaaaaaaaaaaaa", "child"))
        await worker.send(log_request("hello", TRACE))
        store = engine.workers.observability.store
        wait_for(lambda: len(store.trace(TRACE)) == 2 and len(store.recent_logs()) == 1)
        listed = (await call(worker, "engine::traces::list", {"trace_id": TRACE}))["result"]
        assert listed["total"] == 2
        root, child = listed["spans"]
        assert (root["name"], child["parent_span_id"]) == ("root", "aaaaaaaaaaaaaaaa")
        assert root["attributes"] == {"n": 7, "l": ["a"]}
        assert root["kind"] == "SPAN_KIND_SERVER" and root["duration_ms"] == 2.0
        assert root["status"] == {"code": "STATUS_CODE_ERROR", "message": "bad"}
        assert root["service_name"] == "svc"
        tree = (await call(worker, "engine::traces::tree", {"trace_id": TRACE.upper()}))["result"]
        assert [c["name"] for c in tree["roots"][0]["children"]] == ["child"]
        logs = (await call(worker, "engine::logs::list", {"trace_id": TRACE}))["result"]["logs"]
        assert [(r["body"], r["severity_number"]) for r in logs] == [("hello", 9)]
        assert (await call(worker, "engine::logs::list", {"severity_min": 13}))["result"] == {
            "logs": [],
            "total": 0,
        }
        missing = await call(worker, "engine::traces::tree", {"trace_id": "0" * 32})
        assert missing["error"]["code"] == "NOT_FOUND"
        bad = await call(worker, "engine::traces::list", {"limit": -1})
        assert bad["error"]["code"] == "deserialization_error"
        bad = await call(worker, "engine::traces::tree", {})
        assert bad["error"]["message"].endswith("missing field `trace_id`")
        refused = await call(worker, "engine::traces::clear", {})  # off by default
        assert refused["error"]["code"] == "FORBIDDEN"
        engine.config.telemetry_clear = True
        cleared = await call(worker, "engine::traces::clear", {})
        assert cleared["result"] == {"cleared": 2}
        assert (await call(worker, "engine::logs::clear", None))["result"] == {"cleared": 1}
    assert store.sockets_opened == 1  # the control socket is not counted as /otel


async def test_malformed_telemetry_frames_are_dropped(
    engine: EngineThread, caplog: pytest.LogCaptureFixture
) -> None:
    store = engine.workers.observability.store
    async with websockets.connect(engine.url + "/otel") as otel:
        await otel.send(b"OTLP\xff\xfe not utf-8")
        await otel.send(b"LOGS[1, 2]")
        await otel.send(b"XXXX{}")
        await otel.send(span_request(TRACE, "cccccccccccccccc"))  # still served afterwards
        wait_for(lambda: len(store.trace(TRACE)) == 1)
    assert store.frames_dropped == 3
    assert "dropping telemetry frame" in caplog.text


def test_store_keeps_the_most_recent_traces() -> None:
    store = TelemetryStore(max_traces=2, max_spans_per_trace=1, max_logs=1)
    for n in range(3):
        assert store.ingest(span_request(f"{n:032x}", f"{n + 1:016x}"))
    assert store.ingest(span_request(f"{2:032x}", "f" * 16))  # over the per-trace cap
    assert len(store.pending) == 4 and not store.traces  # parsed at the next query
    assert len(store.trace(f"{2:032x}")) == 1
    assert list(store.traces) == [f"{1:032x}", f"{2:032x}"]
    store.ingest(log_request("one", TRACE))
    store.ingest(log_request("two", TRACE))
    assert [r["body"] for r in store.recent_logs()] == ["two"]


def test_unparsed_frames_are_bounded_newest_kept() -> None:
    store = TelemetryStore(max_pending_bytes=1)  # room for one frame at a time
    assert store.ingest(span_request(TRACE, "aaaaaaaaaaaaaaaa"))
    assert store.ingest(span_request(f"{1:032x}", "bbbbbbbbbbbbbbbb"))
    assert len(store.pending) == 1 and store.frames_expired == 1
    assert [s["trace_id"] for s in store.spans()] == [f"{1:032x}"]
