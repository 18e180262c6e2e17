"""Seed 003 span helpers: ids, recording state, with_span, events, attributes, errors, W3C."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from opentelemetry import baggage, trace
from opentelemetry.trace import SpanKind, StatusCode

from iii.observability import (
    current_span_id,
    current_span_is_recording,
    current_trace_id,
    extract_baggage,
    extract_traceparent,
    inject_baggage,
    inject_traceparent,
    record_span_event,
    set_current_span_attribute,
    set_current_span_error,
    with_span,
)
from tests.observability.conftest import Otel

REMOTE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_outside_any_span_everything_is_empty_and_calls_are_no_ops() -> None:
    assert current_trace_id() is None
    assert current_span_id() is None
    assert current_span_is_recording() is False
    assert inject_traceparent() is None
    assert inject_baggage() is None
    set_current_span_attribute("k", "v")  # no active span: nothing to fail
    record_span_event("e")
    set_current_span_error("nope")


def test_with_span_before_init_gets_a_no_op_span() -> None:
    seen: list[Any] = []

    def fn(span: Any) -> str:
        span.set_attribute("ignored", 1)
        span.add_event("ignored")
        seen.append(span)
        return "done"

    assert with_span("untraced", fn) == "done"
    assert seen[0].is_recording() is False
    assert seen[0].get_span_context().is_valid is False


def test_ids_inside_a_span(otel: Otel) -> None:
    def fn(span: Any) -> tuple[str | None, str | None, bool]:
        return current_trace_id(), current_span_id(), current_span_is_recording()

    trace_id, span_id, recording = with_span("work", fn)
    span = otel.span("work")
    assert trace_id == format(span.context.trace_id, "032x") and len(trace_id) == 32
    assert span_id == format(span.context.span_id, "016x") and len(span_id) == 16
    assert recording is True


def test_with_span_kind_and_remote_parent(otel: Otel) -> None:
    with_span("served", lambda span: None, kind=SpanKind.SERVER, traceparent=REMOTE)
    span = otel.span("served")
    assert span.kind is SpanKind.SERVER
    assert format(span.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert span.parent is not None and format(span.parent.span_id, "016x") == "b7ad6b7169203331"


def test_with_span_nests_under_the_current_span(otel: Otel) -> None:
    with_span("outer", lambda _: with_span("inner", lambda _: None))
    outer, inner = otel.span("outer"), otel.span("inner")
    assert inner.parent is not None and inner.parent.span_id == outer.context.span_id
    assert inner.context.trace_id == outer.context.trace_id


def test_with_span_records_an_exception_and_reraises(otel: Otel) -> None:
    def boom(span: Any) -> None:
        raise ValueError("kaboom")

    with pytest.raises(ValueError, match="kaboom"):
        with_span("failing", boom)
    span = otel.span("failing")
    assert span.status.status_code is StatusCode.ERROR
    assert [e.name for e in span.events] == ["exception"]
    assert span.events[0].attributes is not None
    assert span.events[0].attributes["exception.message"] == "kaboom"


async def test_with_span_awaits_a_coroutine_function_inside_the_span(otel: Otel) -> None:
    async def fn(span: Any) -> str | None:
        await asyncio.sleep(0)
        return current_span_id()

    span_id = await with_span("async-work", fn)
    assert span_id == format(otel.span("async-work").context.span_id, "016x")


def test_events_and_attributes_land_on_the_current_span(otel: Otel) -> None:
    def fn(span: Any) -> None:
        set_current_span_attribute("order.id", 42)
        set_current_span_attribute("order.meta", {"a": 1})  # not a primitive: stored as str
        record_span_event("charged", {"amount": 9.5, "currency": "EUR"})
        record_span_event("bare")

    with_span("order", fn)
    span = otel.span("order")
    assert span.attributes is not None
    assert span.attributes["order.id"] == 42
    assert span.attributes["order.meta"] == "{'a': 1}"
    assert [(e.name, dict(e.attributes or {})) for e in span.events] == [
        ("charged", {"amount": 9.5, "currency": "EUR"}),
        ("bare", {}),
    ]


def test_set_current_span_error(otel: Otel) -> None:
    with_span("bad", lambda _: set_current_span_error("validation failed"))
    status = otel.span("bad").status
    assert status.status_code is StatusCode.ERROR
    assert status.description == "validation failed"


def test_traceparent_round_trip(otel: Otel) -> None:
    def fn(span: Any) -> str | None:
        return inject_traceparent()

    header = with_span("carrier", fn)
    span = otel.span("carrier")
    flags = int(span.context.trace_flags)
    assert header == f"00-{span.context.trace_id:032x}-{span.context.span_id:016x}-{flags:02x}"
    assert flags & 1  # sampled
    assert header is not None
    remote = trace.get_current_span(extract_traceparent(header)).get_span_context()
    assert remote.is_remote and remote.trace_id == span.context.trace_id
    assert remote.span_id == span.context.span_id


def test_extract_traceparent_ignores_a_malformed_value() -> None:
    ctx = extract_traceparent("not-a-traceparent")
    assert trace.get_current_span(ctx).get_span_context().is_valid is False


def test_baggage_round_trip() -> None:
    ctx = extract_baggage("tenant=acme,iii.function.id=orders::place")
    assert baggage.get_all(ctx) == {"tenant": "acme", "iii.function.id": "orders::place"}
    from opentelemetry import context

    token = context.attach(ctx)
    try:
        header = inject_baggage()
    finally:
        context.detach(token)
    assert header is not None
    assert sorted(header.split(",")) == ["iii.function.id=orders%3A%3Aplace", "tenant=acme"]
    assert baggage.get_all(extract_baggage(header))["iii.function.id"] == "orders::place"
