"""Traces and logs from the engine's telemetry store (the ``iii-observability`` worker): trace
summaries with filters, one trace laid out as a waterfall, and filtered log records.

Spans are the store's flattened shape (``workers/observability/store.py``); ``service_name``
``iii`` is the engine's own (``core/tracing.py``), shown as "engine".
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from ..core.tracing import ENGINE_SERVICE_NAME
from ..workers.observability.store import TelemetryStore

__all__ = ["LEVELS", "TraceSummary", "Waterfall", "log_rows", "trace_summaries", "waterfall"]

_ERROR = "STATUS_CODE_ERROR"
#: Log levels by their lowest OTel severity number.
LEVELS = {"trace": 1, "debug": 5, "info": 9, "warn": 13, "error": 17, "fatal": 21}


def service_label(name: Any) -> str:
    return "engine" if name == ENGINE_SERVICE_NAME else str(name or "unknown")


def function_of(span: dict[str, Any]) -> str | None:
    value = span["attributes"].get("iii.function.id")
    return str(value) if value is not None else None


@dataclass
class TraceSummary:
    """One trace in the list: its root span, extent and outcome."""

    trace_id: str
    name: str
    service: str
    start_ns: int
    duration_ms: float
    spans: int
    error: bool
    services: list[str]
    functions: list[str]


def summarize(trace_id: str, spans: list[dict[str, Any]]) -> TraceSummary:
    ids = {s["span_id"] for s in spans}
    roots = [s for s in spans if s["parent_span_id"] not in ids] or spans
    root = roots[0]
    start = min(s["start_time_unix_nano"] for s in spans)
    end = max(s["end_time_unix_nano"] for s in spans)
    return TraceSummary(
        trace_id,
        str(root["name"]),
        service_label(root["service_name"]),
        start,
        max(0, end - start) / 1e6,
        len(spans),
        any(s["status"]["code"] == _ERROR for s in spans),
        sorted({service_label(s["service_name"]) for s in spans}),
        sorted({f for f in map(function_of, spans) if f}),
    )


def trace_summaries(
    store: TelemetryStore,
    *,
    function: str = "",
    status: str = "",
    min_ms: float | None = None,
    limit: int = 100,
    scan: int | None = None,
) -> list[TraceSummary]:
    """The newest traces first, filtered: ``function`` (part of a span name or an
    ``iii.function.id``), ``status`` (``ok``/``error``), ``min_ms`` (duration); at most
    ``limit`` of them, looking at the newest ``scan`` traces only (``None``: all)."""
    store.flush()
    out: list[TraceSummary] = []
    needle = function.lower()
    for trace_id in itertools.islice(reversed(store.traces), scan):
        spans = store.trace(trace_id)
        if not spans:
            continue
        summary = summarize(trace_id, spans)
        if needle and not any(
            needle in str(s["name"]).lower() or needle in (function_of(s) or "").lower()
            for s in spans
        ):
            continue
        if (status == "error" and not summary.error) or (status == "ok" and summary.error):
            continue
        if min_ms is not None and summary.duration_ms < min_ms:
            continue
        out.append(summary)
        if len(out) >= limit:
            break
    return out


@dataclass
class WaterfallRow:
    """One span placed on the trace's time axis (``left``/``width`` in % of the trace)."""

    span: dict[str, Any]
    depth: int
    left: float
    width: float
    offset_ms: float
    service: str
    error: bool
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Waterfall:
    summary: TraceSummary
    rows: list[WaterfallRow]
    ticks: list[tuple[float, str]]


def waterfall(trace_id: str, spans: list[dict[str, Any]]) -> Waterfall | None:
    """The spans of one trace, parents before children (by start time), on one time axis."""
    if not spans:
        return None
    summary = summarize(trace_id, spans)
    start = summary.start_ns
    total = max(max(s["end_time_unix_nano"] for s in spans) - start, 1)
    ids = {s["span_id"] for s in spans}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for span in spans:
        parent = span["parent_span_id"] if span["parent_span_id"] in ids else None
        children.setdefault(parent, []).append(span)
    rows: list[WaterfallRow] = []
    stack = [(s, 0) for s in reversed(children.get(None, []))]
    while stack:
        span, depth = stack.pop()
        begin = span["start_time_unix_nano"] - start
        length = max(span["end_time_unix_nano"] - span["start_time_unix_nano"], 0)
        rows.append(
            WaterfallRow(
                span,
                depth,
                100 * begin / total,
                max(100 * length / total, 0.3),
                begin / 1e6,
                service_label(span["service_name"]),
                span["status"]["code"] == _ERROR,
                [{**e, "offset_ms": (e["time_unix_nano"] - start) / 1e6} for e in span["events"]],
            )
        )
        stack.extend((c, depth + 1) for c in reversed(children.get(span["span_id"], [])))
    ticks = [(100 * i / 4, f"{total * i / 4 / 1e6:.2f} ms") for i in range(5)]
    return Waterfall(summary, rows, ticks)


def level_of(severity: int) -> str:
    """The level name of an OTel severity number (``info`` for 0/unknown)."""
    name = "info"
    for level, lowest in LEVELS.items():
        if severity >= lowest:
            name = level
    return name if severity else "info"


def log_rows(
    store: TelemetryStore,
    *,
    level: str = "",
    function: str = "",
    trace_id: str = "",
    search: str = "",
    limit: int = 200,
) -> list[dict[str, Any]]:
    """Log records, newest first, filtered by lowest ``level``, ``function`` (the record's
    ``iii.function.id`` or that of its span), ``trace_id`` and text in the body."""
    store.flush()
    minimum = LEVELS.get(level, 0)
    trace_id = trace_id.strip().lower()
    needle = search.lower()
    span_functions: dict[str, str] = {}
    if function:
        for spans in store.traces.values():
            for raw, _resource, _scope in spans:
                for item in raw.get("attributes") or []:
                    if item.get("key") == "iii.function.id":
                        value = (item.get("value") or {}).get("stringValue")
                        span_functions[str(raw.get("spanId") or "").lower()] = str(value)
    rows = []
    for record in store.recent_logs():
        if record["severity_number"] < minimum:
            continue
        if trace_id and record["trace_id"] != trace_id:
            continue
        if needle and needle not in str(record["body"]).lower():
            continue
        if function:
            found = record["attributes"].get("iii.function.id") or span_functions.get(
                record["span_id"] or ""
            )
            if function.lower() not in str(found or "").lower():
                continue
        rows.append({**record, "level": level_of(record["severity_number"])})
        if len(rows) >= limit:
            break
    return rows
