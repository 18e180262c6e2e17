"""Spans → OTLP/JSON ``ExportTraceServiceRequest`` dicts, fast.

Produces exactly what ``opentelemetry-exporter-otlp-json-common``'s
``encode_spans(spans).to_dict()`` produces (a test holds the two equal), in about a tenth of
the time: spans are the SDK's high-volume signal (one per invocation), while that encoder builds
an intermediate object tree per span. Logs and metrics use the library encoder as they are.
OTLP/JSON rules: lower-case hex ids, 64-bit integers as decimal strings, enums as numbers,
default (zero, empty) fields left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode

from ._handler_span import HandlerSpan

__all__ = ["encode_spans_dict"]

_HAS_IS_REMOTE = 0x100
_IS_REMOTE = 0x200
#: SDK ``SpanKind`` (INTERNAL=0 …) → OTLP ``SPAN_KIND_*`` (INTERNAL=1 …); status code → number.
_KINDS = {kind: kind.value + 1 for kind in SpanKind}
_STATUS_CODES = {code: code.value for code in StatusCode}
_INTERNAL = _KINDS[SpanKind.INTERNAL]
_UNSET = Status(StatusCode.UNSET)


def _value(value: Any) -> dict[str, Any]:
    kind = type(value)
    if kind is str:
        return {"stringValue": value}
    if kind is bool:
        return {"boolValue": value}
    if kind is int:
        return {"intValue": str(value)}
    if kind is float:
        return {"doubleValue": value}
    if value is None:
        return {}
    if isinstance(value, bytes):
        import base64

        return {"bytesValue": base64.b64encode(value).decode()}
    if isinstance(value, Sequence):
        return {"arrayValue": {"values": [_value(v) for v in value]}}
    if isinstance(value, Mapping):
        return {"kvlistValue": {"values": _attributes(value)}}
    raise TypeError(f"Invalid type {type(value)} of value {value}")


def _attributes(attributes: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    if not attributes:
        return []
    # The SDK's BoundedAttributes iterates through the Mapping ABC (a lookup per key, a lock,
    # a copy); its plain dict gives the same items in the same order.
    plain = getattr(attributes, "_dict", None)
    if type(plain) is dict:
        attributes = plain
    out = []
    for key, value in attributes.items():
        kind = type(value)
        if kind is str:  # the common case, inline
            out.append({"key": key, "value": {"stringValue": value}})
        else:
            out.append({"key": str(key), "value": _value(value)})
    return out


def _flags(parent: SpanContext | None) -> int:
    if parent is not None and parent.is_remote:
        return _HAS_IS_REMOTE | _IS_REMOTE
    return _HAS_IS_REMOTE


def _handler_span(span: HandlerSpan) -> dict[str, Any]:
    """:func:`_span` for a handler span, read through its fields (kind INTERNAL, both times
    set, no links unless user code added some)."""
    context = span.context
    out: dict[str, Any] = {
        "traceId": f"{context.trace_id:032x}",
        "spanId": f"{context.span_id:016x}",
    }
    if context.trace_state:
        out["traceState"] = ",".join(f"{k}={v}" for k, v in context.trace_state.items())
    parent = span.parent
    if parent is not None:
        out["parentSpanId"] = f"{parent.span_id:016x}"
        out["flags"] = _HAS_IS_REMOTE | _IS_REMOTE if parent.is_remote else _HAS_IS_REMOTE
    else:
        out["flags"] = _HAS_IS_REMOTE
    if span.name:
        out["name"] = span.name
    out["kind"] = _INTERNAL
    out["startTimeUnixNano"] = str(span.start_time)
    out["endTimeUnixNano"] = str(span.end_time)
    attributes = span._attributes
    if type(attributes) is dict:
        if attributes:
            out["attributes"] = _attributes(attributes)
    else:
        if attributes:
            out["attributes"] = _attributes(attributes)
        if span.dropped_attributes:
            out["droppedAttributesCount"] = span.dropped_attributes
    events = []
    for event in span._events:
        encoded: dict[str, Any] = {"timeUnixNano": str(event.timestamp)}
        if event.name:
            encoded["name"] = event.name
        event_attributes = event.attributes
        if event_attributes:
            encoded["attributes"] = _attributes(event_attributes)
        if event.dropped_attributes:
            encoded["droppedAttributesCount"] = event.dropped_attributes
        events.append(encoded)
    if events:
        out["events"] = events
    if span._dropped_events:
        out["droppedEventsCount"] = span._dropped_events
    if span._links is not None:
        _links(span, out)
    status = span.status
    if status is _UNSET:
        out["status"] = {}
    else:
        out["status"] = _status(status)
    return out


def _span(span: ReadableSpan | HandlerSpan) -> dict[str, Any]:
    if type(span) is HandlerSpan:
        return _handler_span(span)
    context = span.get_span_context()
    out: dict[str, Any] = {
        "traceId": f"{context.trace_id:032x}" if context else "0" * 32,
        "spanId": f"{context.span_id:016x}" if context else "0" * 16,
    }
    if context is not None and context.trace_state:
        out["traceState"] = ",".join(f"{k}={v}" for k, v in context.trace_state.items())
    parent = span.parent
    if parent is not None:
        out["parentSpanId"] = f"{parent.span_id:016x}"
    out["flags"] = _flags(parent)
    if span.name:
        out["name"] = span.name
    out["kind"] = _KINDS[span.kind]
    start_time = span.start_time
    if start_time:
        out["startTimeUnixNano"] = str(start_time)
    end_time = span.end_time
    if end_time:
        out["endTimeUnixNano"] = str(end_time)
    # The SDK span's own attributes (``span.attributes`` wraps them in a MappingProxy first).
    attributes = _attributes(getattr(span, "_attributes", None) or span.attributes)
    if attributes:
        out["attributes"] = attributes
    if span.dropped_attributes:
        out["droppedAttributesCount"] = span.dropped_attributes
    # The SDK span's own event list (``span.events`` copies it into a tuple under a lock).
    span_events = getattr(getattr(span, "_events", None), "_dq", None)
    if span_events is None:
        span_events = span.events
    if span_events:
        events = []
        for event in span_events:
            encoded: dict[str, Any] = {}
            timestamp = event.timestamp
            if timestamp:
                encoded["timeUnixNano"] = str(timestamp)
            if event.name:
                encoded["name"] = event.name
            event_attributes = event.attributes
            if event_attributes:
                encoded["attributes"] = _attributes(event_attributes)
            if event.dropped_attributes:
                encoded["droppedAttributesCount"] = event.dropped_attributes
            events.append(encoded)
        out["events"] = events
    if span.dropped_events:
        out["droppedEventsCount"] = span.dropped_events
    _links(span, out)
    out["status"] = _status(span.status)
    return out


def _links(span: ReadableSpan | HandlerSpan, out: dict[str, Any]) -> None:
    span_links = span.links
    if span_links:
        links = []
        for link in span_links:
            encoded: dict[str, Any] = {
                "traceId": format(link.context.trace_id, "032x"),
                "spanId": format(link.context.span_id, "016x"),
            }
            link_attributes = _attributes(link.attributes)
            if link_attributes:
                encoded["attributes"] = link_attributes
            if link.dropped_attributes:
                encoded["droppedAttributesCount"] = link.dropped_attributes
            encoded["flags"] = _flags(link.context)
            links.append(encoded)
        out["links"] = links
    if span.dropped_links:
        out["droppedLinksCount"] = span.dropped_links


def _status(span_status: Status) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if span_status.description:
        status["message"] = span_status.description
    code = _STATUS_CODES[span_status.status_code]
    if code:
        status["code"] = code
    return status


def encode_spans_dict(spans: Sequence[ReadableSpan | HandlerSpan]) -> dict[str, Any]:
    """``{"resourceSpans": [...]}`` for ``spans``, grouped by resource then scope (``{}`` for
    no spans)."""
    # Grouped by resource identity: hashing a Resource serialises its attributes each time.
    grouped: dict[int, tuple[Any, dict[Any, list[dict[str, Any]]]]] = {}
    for span in spans:
        resource = span.resource
        group = grouped.get(id(resource))
        if group is None:
            group = (resource, {})
            grouped[id(resource)] = group
        group[1].setdefault(span.instrumentation_scope or None, []).append(_span(span))
    resource_spans = []
    for resource, scopes in grouped.values():
        scope_spans = []
        for scope, encoded in scopes.items():
            entry: dict[str, Any] = {"scope": _scope(scope), "spans": encoded}
            if scope is not None and scope.schema_url:
                entry["schemaUrl"] = scope.schema_url
            scope_spans.append(entry)
        resource_entry: dict[str, Any] = {"resource": {}, "scopeSpans": scope_spans}
        resource_attributes = _attributes(resource.attributes)
        if resource_attributes:
            resource_entry["resource"]["attributes"] = resource_attributes
        if resource.schema_url:
            resource_entry["schemaUrl"] = resource.schema_url
        resource_spans.append(resource_entry)
    return {"resourceSpans": resource_spans} if resource_spans else {}


def _scope(scope: Any) -> dict[str, Any]:
    if scope is None:
        return {}
    out: dict[str, Any] = {}
    if scope.name:
        out["name"] = scope.name
    if scope.version:
        out["version"] = scope.version
    attributes = _attributes(scope.attributes)
    if attributes:
        out["attributes"] = attributes
    return out
