"""The handler span (``_handler_span.HandlerSpan``) records what the OpenTelemetry SDK's span
records: each scenario runs once through it and once through the SDK tracer, and the exported
spans must be equal in everything but ids and times. Also: where it steps aside for the SDK,
and that its OTLP encoding is the library encoder's."""

from __future__ import annotations

import gc
import json
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.json.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, Status, StatusCode, TraceFlags

from iii.observability import (
    current_span_is_recording,
    flush_otel,
    record_span_event,
    set_current_span_attribute,
    set_current_span_error,
    with_span,
)
from iii.observability._batch import SpanBatcher
from iii.observability._exporters import EngineSpanExporter
from iii.observability._handler_span import HandlerSpan
from iii.observability._invocation import end_execution, start_execution
from iii.observability._otlp import encode_spans_dict, encode_spans_json, handler_span_text
from iii.observability._state import state
from iii_asgi.engine import EngineThread
from tests.helpers import wait_for
from tests.observability.conftest import Otel

TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = f"00-{TRACE}-b7ad6b7169203331-01"
Body = Callable[[Any], Any]


def run(
    body: Body,
    *,
    fast: bool,
    traceparent: str | None = PARENT,
    baggage: str | None = None,
    data: Any = None,
    force_sdk: bool | None = None,
) -> Any:
    """Run ``body(span)`` as a handler between start_execution and end_execution; returns the
    span the handler ran in, a handler span when ``fast``. ``force_sdk`` (default: not
    ``fast``) turns handler spans off; without it they must step aside by themselves."""
    saved = state.handler_spans
    if force_sdk if force_sdk is not None else not fast:
        state.handler_spans = None
    try:
        execution = start_execution("demo::fn", "inv-1", traceparent, baggage, data)
        assert execution is not None
        span = trace.get_current_span()
        try:
            result = body(span)
        except Exception as exc:
            end_execution(execution, error=exc)
        else:
            end_execution(execution, result)
    finally:
        state.handler_spans = saved
    assert (type(span) is HandlerSpan) is fast
    return span


def comparable(span: ReadableSpan) -> dict[str, Any]:
    """Everything but ids and times."""
    return {
        "name": span.name,
        "kind": span.kind,
        "parent": span.parent and (span.parent.span_id, span.parent.is_remote),
        "trace_id": span.context.trace_id if span.parent else None,
        "flags": span.context.trace_flags,
        "trace_state": span.context.trace_state,
        "remote": span.context.is_remote,
        "attributes": dict(span.attributes or {}),
        "dropped_attributes": span.dropped_attributes,
        "events": [(e.name, dict(e.attributes or {}), e.dropped_attributes) for e in span.events],
        "dropped_events": span.dropped_events,
        "links": [
            (link.context, dict(link.attributes or {}), link.dropped_attributes)
            for link in span.links
        ],
        "dropped_links": span.dropped_links,
        "status": (span.status.status_code, span.status.description),
        "resource": span.resource.attributes,
        "scope": span.instrumentation_scope,
        "timed": bool(span.start_time and span.end_time and span.end_time >= span.start_time),
    }


def both(otel: Otel, body: Body, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The exported ``execute demo::fn`` span of the fast run and of the SDK run."""
    otel.span_exporter.clear()
    run(body, fast=True, **kwargs)
    run(body, fast=False, **kwargs)
    spans = [s for s in otel.spans() if s.name.startswith("execute demo::fn")]
    assert len(spans) == 2, [s.name for s in otel.spans()]
    assert all(type(s) is ReadableSpan for s in spans)  # other exporters get SDK spans
    fast, sdk = (comparable(s) for s in spans)
    return fast, sdk


def quiet(span: Any) -> Any:
    return {"ok": True}


def busy(span: Any) -> Any:
    assert current_span_is_recording()
    set_current_span_attribute("user.s", "x")
    set_current_span_attribute("user.i", 3)
    set_current_span_attribute("user.l", [1, 2])
    set_current_span_attribute("user.obj", {"a": 1})  # stored as str()
    set_current_span_attribute("iii.function.id", "moved")  # an update moves the key last
    record_span_event("step", {"n": 1, "what": ["a", "b"]})
    span.add_event("bare")
    span.set_attributes({"many.a": True, "many.b": 1.5})
    span.add_link(SpanContext(int(TRACE, 16), 5, True, TraceFlags(1)), {"why": "fan-in"})
    span.add_link(trace.INVALID_SPAN_CONTEXT)  # ignored: invalid and no attributes
    span.update_name("execute demo::fn renamed")
    with_span("child", lambda child: child.set_attribute("in", "child"))
    set_current_span_error("half broken")
    return {"token": "hide", "fine": 1}


def fails(span: Any) -> Any:
    raise ValueError("kaboom")


def ok_is_final(span: Any) -> Any:
    span.set_status(Status(StatusCode.OK))
    span.set_status(StatusCode.ERROR, "ignored")
    span.set_status(Status(StatusCode.UNSET))
    return None


@pytest.mark.parametrize("body", [quiet, busy, fails, ok_is_final])
@pytest.mark.parametrize(
    "traceparent,baggage",
    [
        (PARENT, None),
        (None, None),
        (f"00-{TRACE}-b7ad6b7169203331-03", "user.id=42,iii.function.id=caller%3A%3Ax"),
        ("01-" + TRACE + "-b7ad6b7169203331-01-future", "k=v"),  # through the W3C propagator
    ],
)
def test_the_handler_span_records_what_the_sdk_span_records(
    otel: Otel, body: Body, traceparent: str | None, baggage: str | None
) -> None:
    fast, sdk = both(otel, body, traceparent=traceparent, baggage=baggage, data={"password": 1})
    assert fast == sdk
    assert fast["timed"]


def test_the_handlers_child_spans_and_exceptions_are_where_the_sdk_puts_them(otel: Otel) -> None:
    fast, _ = both(otel, busy)
    assert fast["events"][0] == ("iii.invocation.input", {"iii.payload": "null"}, 0)
    assert ("step", {"n": 1, "what": ("a", "b")}, 0) in fast["events"]
    assert fast["attributes"]["user.obj"] == "{'a': 1}"
    assert list(fast["attributes"])[-3:] == ["iii.function.id", "many.a", "many.b"]
    assert fast["status"] == (StatusCode.ERROR, "half broken")
    assert fast["events"][-1][1]["iii.payload"] == '{"token":"[REDACTED]","fine":1}'
    children = [s for s in otel.spans() if s.name == "child"]
    handlers = [s for s in otel.spans() if s.name.startswith("execute")]
    assert len(children) == 2
    assert {c.parent.span_id for c in children if c.parent} == {s.context.span_id for s in handlers}
    fast, _ = both(otel, fails)
    (event,) = [e for e in fast["events"] if e[0] == "exception"]
    assert event[1]["exception.type"] == "ValueError"
    assert event[1]["exception.escaped"] == "False"
    assert "kaboom" in event[1]["exception.stacktrace"]


def test_limits_evict_and_count_like_the_sdk(
    otel_env: None, monkeypatch: pytest.MonkeyPatch, otel_factory: Callable[..., Otel]
) -> None:
    monkeypatch.setenv("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "4")
    monkeypatch.setenv("OTEL_SPAN_EVENT_COUNT_LIMIT", "3")
    monkeypatch.setenv("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", "1")
    monkeypatch.setenv("OTEL_SPAN_LINK_COUNT_LIMIT", "1")
    otel = otel_factory()

    def crowded(span: Any) -> Any:
        for i in range(6):
            set_current_span_attribute(f"a{i}", i)
            record_span_event(f"e{i}", {"x": i, "y": i})
        for i in range(1, 3):
            span.add_link(SpanContext(int(TRACE, 16), i, True, TraceFlags(1)))
        return None

    fast, sdk = both(otel, crowded, baggage="b=1")
    assert fast == sdk
    assert fast["dropped_attributes"] > 0 and fast["dropped_events"] > 0
    assert fast["dropped_links"] == 1


def test_writes_after_the_end_are_ignored(otel: Otel) -> None:
    kept: list[Any] = []
    span = run(lambda s: kept.append(s), fast=True)
    span.set_attribute("late", 1)
    span.add_event("late")
    span.set_status(StatusCode.ERROR)
    span.update_name("late")
    span.end()  # a second end: a warning, nothing else
    (exported,) = [s for s in otel.spans() if s.name == "execute demo::fn"]
    assert "late" not in (exported.attributes or {})
    assert [e.name for e in exported.events] == ["iii.invocation.input", "iii.invocation.output"]
    assert exported.status.status_code is StatusCode.UNSET
    assert not span.is_recording()


def test_an_unsampled_parent_is_left_to_the_sdk(otel: Otel) -> None:
    seen: list[bool] = []
    span = run(
        lambda s: seen.append(current_span_is_recording()),
        fast=False,  # the handler span steps aside: the SDK makes a non-recording span
        force_sdk=False,
        traceparent=f"00-{TRACE}-b7ad6b7169203331-00",
    )
    assert seen == [False] and not span.is_recording()
    assert otel.spans() == []


def test_a_span_processor_of_the_users_turns_handler_spans_off(otel: Otel) -> None:
    run(quiet, fast=True)
    mine = InMemorySpanExporter()
    state.tracer_provider.add_span_processor(SimpleSpanProcessor(mine))
    run(quiet, fast=False, force_sdk=False)  # every processor must see the start: SDK span
    assert [s.name for s in mine.get_finished_spans()] == ["execute demo::fn"]


def test_another_sampler_turns_handler_spans_off(
    otel_env: None, monkeypatch: pytest.MonkeyPatch, otel_factory: Callable[..., Otel]
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_on")
    otel = otel_factory()
    run(quiet, fast=False, force_sdk=False)
    assert len(otel.spans()) == 1


def test_the_encoding_of_a_handler_span_is_the_library_encoders() -> None:
    captured: list[Any] = []

    class Keep:
        reads_handler_spans = True

        def export(self, spans: Any) -> Any:
            captured.extend(spans)

        def shutdown(self) -> None:
            return None

        def force_flush(self, timeout_millis: int = 0) -> bool:
            return True

    from iii.observability import OtelConfig, init_otel, shutdown_otel
    from tests.observability.conftest import reset_otel_globals

    shutdown_otel()
    reset_otel_globals()
    init_otel(OtelConfig(enabled=True, engine_export=False, span_exporters=[Keep()]))
    try:
        for body in (quiet, busy, fails):
            run(body, fast=True, baggage="k=v")
        run(quiet, fast=True, traceparent=None)
        run(lambda span: '\ud800 "quoted" \u00e9\n', fast=True)  # payload: its repr
        run(lambda span: span.set_attribute("bad", "\ud800"), fast=True)
        flush_otel()
    finally:
        shutdown_otel()
        reset_otel_globals()
    handler_spans = [s for s in captured if type(s) is HandlerSpan]
    assert len(handler_spans) == 6
    # written as text: the usual shape, with and without a parent and baggage
    assert [handler_span_text(s) is not None for s in handler_spans] == [
        True,  # quiet, under a remote parent, with baggage
        False,  # busy: user attributes of other types, a link, an error status
        False,  # fails: an error status
        True,  # quiet, a new trace
        True,  # a lone surrogate in the result: recorded as its repr
        True,  # a lone surrogate in an attribute
    ]
    readable = [s.to_readable() if type(s) is HandlerSpan else s for s in captured]
    expected = encode_spans(readable).to_dict()
    assert encode_spans_dict(captured) == expected
    assert json.loads(encode_spans_json(captured[:-1])) == encode_spans(readable[:-1]).to_dict()
    for span in handler_spans[:-1]:  # one span per request as well
        assert json.loads(encode_spans_json([span])) == encode_spans([span.to_readable()]).to_dict()
    output = handler_spans[-2].events[-1].attributes
    assert output == {
        "iii.payload": json.dumps(repr('\ud800 "quoted" \u00e9\n'), ensure_ascii=False)
    }
    # not UTF-8: pydantic (and so the library encoder) refuses it; the frame keeps the span
    (bad,) = json.loads(encode_spans_json(captured[-1:]))["resourceSpans"][0]["scopeSpans"][0][
        "spans"
    ]
    assert {"key": "bad", "value": {"stringValue": "?"}} in bad["attributes"]
    # the same in a span written through the dict path (a list attribute)
    mixed = handler_spans[-1]
    mixed._attributes = {**mixed._attributes, "bad": ("\ud800", "ok")}  # type: ignore[assignment]
    assert handler_span_text(mixed) is None
    (span,) = json.loads(encode_spans_json([mixed]))["resourceSpans"][0]["scopeSpans"][0]["spans"]
    bad = {
        "key": "bad",
        "value": {"arrayValue": {"values": [{"stringValue": "?"}, {"stringValue": "ok"}]}},
    }
    assert bad in span["attributes"]


def test_the_engine_exporter_queues_handler_spans_as_text(
    engine: EngineThread, otel_factory: Callable[..., Otel]
) -> None:
    # Queued span objects would be promoted to the collector's oldest generation under load;
    # text is not tracked by it at all.
    otel = otel_factory(engine_ws_url=engine.url, spans_flush_interval_ms=60_000)
    (batcher,) = [
        p
        for p in state.tracer_provider.processors
        if isinstance(p, SpanBatcher) and isinstance(p.exporter, EngineSpanExporter)
    ]
    for _ in range(3):
        run(quiet, fast=True)
    run(busy, fast=True)
    queued = list(batcher._queue)
    # busy's child span (the SDK's), then busy itself (not of the usual shape)
    assert [type(item) for item in queued] == [str, str, str, ReadableSpan, HandlerSpan]
    assert not any(gc.is_tracked(item) for item in queued[:3])
    flush_otel()
    ours = {s.context.span_id: s for s in otel.spans()}  # the same spans, as the SDK's
    store = engine.workers.observability.store
    wait_for(lambda: len(store.spans()) == len(ours))
    for stored in store.spans():
        span = ours[int(stored["span_id"], 16)]
        assert stored["name"] == span.name
        assert stored["attributes"] == plain(span.attributes)
        assert [(e["name"], e["attributes"]) for e in stored["events"]] == [
            (e.name, plain(e.attributes)) for e in span.events
        ]
        assert stored["start_time_unix_nano"] == span.start_time
        assert stored["end_time_unix_nano"] == span.end_time


def plain(attributes: Any) -> dict[str, Any]:
    """Attributes as the engine store gives them back (sequences as lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in (attributes or {}).items()}


def test_an_sdk_disabled_by_the_environment_makes_no_handler_spans(
    otel_env: None, monkeypatch: pytest.MonkeyPatch, otel_factory: Callable[..., Otel]
) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")  # the SDK's tracer is then a no-op tracer
    otel = otel_factory()
    seen: list[bool] = []
    run(lambda s: seen.append(current_span_is_recording()), fast=False, force_sdk=False)
    assert seen == [False]
    assert otel.spans() == []
