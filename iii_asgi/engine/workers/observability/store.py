"""The engine's bounded in-memory telemetry store (protocol.md §1.11, builtins.md §12).

Binary frames from the SDK (on ``/otel`` or the control socket) are a 4-byte prefix and
OTLP/JSON: ``OTLP`` spans, ``LOGS`` log records, ``MTRC`` metrics. The store flattens them:

- span: ``{trace_id, span_id, parent_span_id, name, kind, start_time_unix_nano,
  end_time_unix_nano, duration_ms, status: {code, message}, attributes: {}, events: [{name,
  time_unix_nano, attributes}], service_name, resource: {}, scope}``; ``kind`` and
  ``status.code`` are OTLP's names (``SPAN_KIND_SERVER``, ``STATUS_CODE_ERROR``...);
- log: ``{timestamp_unix_nano, severity_number, severity_text, body, attributes, trace_id,
  span_id, service_name, resource}``;
- metric: ``{name, description, unit, type, data_points, service_name, resource}``.

The most recent ``max_traces`` traces (oldest evicted first, at most ``max_spans_per_trace``
spans each), ``max_logs`` log records and ``max_metrics`` metric reports are kept. Frames are
parsed lazily, at the next query, so telemetry costs the engine's hot path an append per frame;
of the frames received since the last query only the newest ``max_pending_bytes`` (8 MiB) are
kept. Spans are flattened only when queried.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from typing import Any

import pydantic_core

__all__ = ["PREFIXES", "TelemetryStore"]

logger = logging.getLogger("iii_asgi.engine.otel")

PREFIXES = (b"OTLP", b"LOGS", b"MTRC")
_KINDS = {
    0: "SPAN_KIND_UNSPECIFIED",
    1: "SPAN_KIND_INTERNAL",
    2: "SPAN_KIND_SERVER",
    3: "SPAN_KIND_CLIENT",
    4: "SPAN_KIND_PRODUCER",
    5: "SPAN_KIND_CONSUMER",
}
_METRIC_TYPES = ("sum", "gauge", "histogram", "exponentialHistogram", "summary")
_STATUS = {0: "STATUS_CODE_UNSET", 1: "STATUS_CODE_OK", 2: "STATUS_CODE_ERROR"}


def any_value(value: Any) -> Any:
    """An OTLP/JSON ``AnyValue`` as a plain value (int64 strings become ints)."""
    if not isinstance(value, dict) or not value:
        return None
    key, inner = next(iter(value.items()))
    if key == "intValue":
        try:
            return int(inner)
        except (TypeError, ValueError):
            return inner
    if key == "arrayValue":
        return [any_value(v) for v in (inner or {}).get("values", [])]
    if key == "kvlistValue":
        return attributes((inner or {}).get("values", []))
    return inner


def attributes(items: Any) -> dict[str, Any]:
    """OTLP ``[{key, value: AnyValue}]`` → ``{key: value}``."""
    if not isinstance(items, list):
        return {}
    return {
        str(item.get("key")): any_value(item.get("value"))
        for item in items
        if isinstance(item, dict)
    }


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _enum(value: Any, names: dict[int, str]) -> str:
    if isinstance(value, str):
        return value
    return names.get(_int(value), str(value))


def _flatten_span(raw: dict[str, Any], resource: dict[str, Any], scope: Any) -> dict[str, Any]:
    start, end = _int(raw.get("startTimeUnixNano")), _int(raw.get("endTimeUnixNano"))
    status = raw.get("status") or {}
    return {
        "trace_id": str(raw.get("traceId")).lower(),
        "span_id": str(raw.get("spanId") or "").lower(),
        "parent_span_id": str(raw.get("parentSpanId") or "").lower() or None,
        "name": raw.get("name"),
        "kind": _enum(raw.get("kind", 0), _KINDS),
        "start_time_unix_nano": start,
        "end_time_unix_nano": end,
        "duration_ms": max(0, end - start) / 1e6,
        "status": {
            "code": _enum(status.get("code", 0), _STATUS),
            "message": status.get("message"),
        },
        "attributes": attributes(raw.get("attributes")),
        "events": [
            {
                "name": e.get("name"),
                "time_unix_nano": _int(e.get("timeUnixNano")),
                "attributes": attributes(e.get("attributes")),
            }
            for e in raw.get("events") or []
            if isinstance(e, dict)
        ],
        "service_name": resource.get("service.name"),
        "resource": resource,
        "scope": scope,
    }


class TelemetryStore:
    """Recent spans by trace id, logs and metrics; fed with :meth:`ingest`."""

    def __init__(
        self,
        max_traces: int = 1000,
        max_spans_per_trace: int = 1000,
        max_logs: int = 10_000,
        max_metrics: int = 1000,
        max_pending_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        self.max_traces = max(1, max_traces)
        self.max_spans_per_trace = max(1, max_spans_per_trace)
        #: trace id → ``(raw OTLP span, resource attributes, scope name)``, oldest trace first.
        self.traces: OrderedDict[str, list[tuple[dict[str, Any], dict[str, Any], Any]]] = (
            OrderedDict()
        )
        self.logs: deque[dict[str, Any]] = deque(maxlen=max(1, max_logs))
        self.metrics: deque[dict[str, Any]] = deque(maxlen=max(1, max_metrics))
        #: Frames not parsed yet (see :meth:`ingest`).
        self.pending: deque[bytes] = deque()
        self.pending_bytes = 0
        self.max_pending_bytes = max_pending_bytes
        #: ``/otel`` sockets accepted since start, and frames dropped as malformed.
        self.sockets_opened = 0
        self.frames_dropped = 0
        #: The last resource entry decoded and its attributes (:meth:`_resource_attributes`).
        self._last_resource: tuple[Any, dict[str, Any]] = (None, {})
        self.frames_expired = 0

    # -- ingestion ------------------------------------------------------------------------------

    def ingest(self, frame: bytes) -> bool:
        """Keep one prefixed frame for later: parsing waits for the next query, so the socket's
        read loop only appends. Past ``max_pending_bytes`` of unparsed frames the oldest are
        forgotten (counted in ``frames_expired``). ``False`` (logged, dropped) for an unknown
        prefix."""
        if frame[:4] not in PREFIXES:
            return self._drop(frame[:4], "unknown prefix")
        pending = self.pending
        pending.append(frame)
        self.pending_bytes += len(frame)
        while self.pending_bytes > self.max_pending_bytes and len(pending) > 1:
            self.pending_bytes -= len(pending.popleft())
            self.frames_expired += 1
        return True

    def flush(self) -> None:
        """Parse the frames received since the last query into the store."""
        pending = self.pending
        while pending:
            frame = pending.popleft()
            self.pending_bytes -= len(frame)
            self._parse(frame)

    def _parse(self, frame: bytes) -> bool:
        prefix, payload = frame[:4], frame[4:]
        try:
            payload.decode()
            document = pydantic_core.from_json(payload)
        except ValueError as exc:  # UnicodeDecodeError is a ValueError
            return self._drop(prefix, f"not UTF-8 JSON: {exc}")
        if not isinstance(document, dict):
            return self._drop(prefix, "not a JSON object")
        if prefix == b"OTLP":
            self.add_spans(document)
        elif prefix == b"LOGS":
            self.add_logs(document)
        else:
            self.add_metrics(document)
        return True

    def _drop(self, prefix: bytes, reason: str) -> bool:
        self.frames_dropped += 1
        logger.warning("dropping telemetry frame %r: %s", prefix, reason)
        return False

    def _resource_attributes(self, entry: Any) -> dict[str, Any]:
        """A resource entry's attributes; the same dict again for the same entry object (the
        engine's own spans share one entry object, ``core.tracing``: decoded once)."""
        last = self._last_resource
        if entry is not None and entry is last[0]:
            decoded: dict[str, Any] = last[1]
            return decoded
        decoded = attributes((entry or {}).get("attributes"))
        self._last_resource = (entry, decoded)
        return decoded

    def _resources(self, document: dict[str, Any], key: str, scope_key: str, items_key: str) -> Any:
        """``(resource attributes, scope name, item)`` for every item; the resource dict is
        shared by the items of one resource entry."""
        for resource_entry in document.get(key) or []:
            if not isinstance(resource_entry, dict):
                continue
            resource = self._resource_attributes(resource_entry.get("resource"))
            for scope_entry in resource_entry.get(scope_key) or []:
                if not isinstance(scope_entry, dict):
                    continue
                scope = (scope_entry.get("scope") or {}).get("name")
                for item in scope_entry.get(items_key) or []:
                    if isinstance(item, dict):
                        yield resource, scope, item

    def add_spans(self, document: dict[str, Any]) -> None:
        """Index the spans of an ``ExportTraceServiceRequest`` (OTLP/JSON) by trace id; they are
        flattened when queried, keeping ingestion cheap."""
        traces = self.traces
        found = self._resources(document, "resourceSpans", "scopeSpans", "spans")
        for resource, scope, raw in found:
            trace_id = raw.get("traceId")
            if not isinstance(trace_id, str) or not trace_id:
                continue
            trace_id = trace_id.lower()
            spans = traces.get(trace_id)
            if spans is None:
                spans = traces[trace_id] = []
                if len(traces) > self.max_traces:
                    traces.popitem(last=False)
            else:
                traces.move_to_end(trace_id)
            if len(spans) < self.max_spans_per_trace:
                spans.append((raw, resource, scope))

    def add_logs(self, document: dict[str, Any]) -> None:
        """Store the records of an ``ExportLogsServiceRequest`` (OTLP/JSON)."""
        for resource, scope, raw in self._resources(
            document, "resourceLogs", "scopeLogs", "logRecords"
        ):
            self.logs.append(
                {
                    "timestamp_unix_nano": _int(
                        raw.get("timeUnixNano") or raw.get("observedTimeUnixNano")
                    ),
                    "severity_number": _int(raw.get("severityNumber")),
                    "severity_text": raw.get("severityText"),
                    "body": any_value(raw.get("body")),
                    "attributes": attributes(raw.get("attributes")),
                    "trace_id": str(raw.get("traceId") or "").lower() or None,
                    "span_id": str(raw.get("spanId") or "").lower() or None,
                    "service_name": resource.get("service.name"),
                    "resource": resource,
                    "scope": scope,
                }
            )

    def add_record(self, record: dict[str, Any]) -> None:
        """Store one already flattened log record (``engine::log::*``), after the frames
        received before it, so ``engine::logs::list`` keeps arrival order."""
        self.flush()
        self.logs.append(record)

    def add_metrics(self, document: dict[str, Any]) -> None:
        """Store the metrics of an ``ExportMetricsServiceRequest`` (OTLP/JSON)."""
        for resource, scope, raw in self._resources(
            document, "resourceMetrics", "scopeMetrics", "metrics"
        ):
            kind = next((k for k in _METRIC_TYPES if k in raw), None)
            points = (raw.get(kind) or {}).get("dataPoints", []) if kind else []
            self.metrics.append(
                {
                    "name": raw.get("name"),
                    "description": raw.get("description"),
                    "unit": raw.get("unit"),
                    "type": kind,
                    "data_points": [
                        {**p, "attributes": attributes(p.get("attributes"))}
                        for p in points
                        if isinstance(p, dict)
                    ],
                    "service_name": resource.get("service.name"),
                    "resource": resource,
                    "scope": scope,
                }
            )

    # -- queries --------------------------------------------------------------------------------

    def trace(self, trace_id: str) -> list[dict[str, Any]]:
        """The stored spans of ``trace_id``, flattened, by start time."""
        self.flush()
        spans = [_flatten_span(*entry) for entry in self.traces.get(trace_id.lower(), [])]
        return sorted(spans, key=lambda s: s["start_time_unix_nano"])

    def spans(self) -> list[dict[str, Any]]:
        """Every stored span, newest trace first, each trace by start time."""
        self.flush()
        out: list[dict[str, Any]] = []
        for trace_id in reversed(self.traces):
            out.extend(self.trace(trace_id))
        return out

    def clear_traces(self) -> int:
        self.flush()
        count = sum(len(spans) for spans in self.traces.values())
        self.traces.clear()
        return count

    def recent_logs(self) -> list[dict[str, Any]]:
        """Stored log records, newest first."""
        self.flush()
        return list(reversed(self.logs))

    def recent_metrics(self) -> list[dict[str, Any]]:
        """Stored metric reports, newest first."""
        self.flush()
        return list(reversed(self.metrics))

    def clear_logs(self) -> int:
        self.flush()
        count = len(self.logs)
        self.logs.clear()
        return count
