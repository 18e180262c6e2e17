"""The SDK's span batcher (``iii.observability._batch``) and the engine span exporter's framing:
spans leave in batches from the exporter thread, a full queue drops and counts spans with one
rate-limited warning, and a large export reaches the engine's store whole, in several frames."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, Sampler
from opentelemetry.trace import Tracer

from iii.observability._batch import SpanBatcher
from iii.observability._exporters import (
    SPANS_PER_FRAME,
    EngineConnection,
    EngineSpanExporter,
)
from iii_asgi.engine import EngineThread
from tests.helpers import wait_for


class GatedExporter(SpanExporter):
    """Records each export's batch size; blocks every export until ``gate`` is set."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.batches: list[int] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.entered.set()
        self.gate.wait(10)
        self.batches.append(len(spans))
        return SpanExportResult.SUCCESS


def _tracer(processor: SpanBatcher, sampler: Sampler | None = None) -> Tracer:
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(processor)
    return provider.get_tracer("test")


def test_spans_are_exported_in_batches_from_the_exporter_thread() -> None:
    exporter = InMemorySpanExporter()
    batcher = SpanBatcher(exporter, schedule_delay_millis=10_000, max_export_batch_size=4)
    tracer = _tracer(batcher)
    for i in range(10):
        tracer.start_span(f"s{i}").end()
    # Full batches wake the thread before the (long) delay; the rest may wait for a flush.
    wait_for(lambda: len(exporter.get_finished_spans()) >= 8)
    assert batcher.force_flush()
    names = [s.name for s in exporter.get_finished_spans()]
    assert names == [f"s{i}" for i in range(10)]
    batcher.shutdown()
    assert not batcher.force_flush()


def test_unsampled_spans_are_not_queued() -> None:
    exporter = InMemorySpanExporter()
    batcher = SpanBatcher(exporter, schedule_delay_millis=10)
    tracer = _tracer(batcher, ALWAYS_OFF)
    tracer.start_span("dropped by the sampler").end()
    batcher.force_flush()
    assert exporter.get_finished_spans() == ()
    batcher.shutdown()


def test_a_full_queue_drops_and_counts_spans_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    exporter = GatedExporter()
    batcher = SpanBatcher(
        exporter, schedule_delay_millis=1, max_queue_size=5, max_export_batch_size=5
    )
    tracer = _tracer(batcher)
    tracer.start_span("first").end()
    assert exporter.entered.wait(5)  # the thread holds "first", blocked in export
    with caplog.at_level(logging.WARNING, logger="iii.telemetry"):
        for i in range(25):
            tracer.start_span(f"s{i}").end()
    assert batcher.dropped == 20  # 5 queued while the exporter is stuck, 20 dropped
    warnings = [r for r in caplog.records if "queue full" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "dropped 1 span(s)" in warnings[0].getMessage()
    exporter.gate.set()
    wait_for(lambda: sum(exporter.batches) == 6)
    batcher.shutdown()
    assert exporter.batches == [1, 5]


def test_the_warning_reports_the_count_dropped_since_the_previous_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    exporter = GatedExporter()
    batcher = SpanBatcher(
        exporter,
        schedule_delay_millis=1,
        max_queue_size=1,
        max_export_batch_size=1,
        warn_interval_s=3600.0,
    )
    tracer = _tracer(batcher)
    tracer.start_span("first").end()
    assert exporter.entered.wait(5)
    tracer.start_span("queued").end()
    with caplog.at_level(logging.WARNING, logger="iii.telemetry"):
        for _ in range(3):
            tracer.start_span("dropped").end()
        batcher._last_warning = float("-inf")  # the interval has passed
        tracer.start_span("dropped").end()
    messages = [r.getMessage() for r in caplog.records if "queue full" in r.getMessage()]
    assert len(messages) == 2
    assert "dropped 1 span(s) since the last warning, 1 in all" in messages[0]
    assert "dropped 3 span(s) since the last warning, 4 in all" in messages[1]
    exporter.gate.set()
    batcher.shutdown()


def test_a_large_export_reaches_the_engine_store_in_several_frames(engine: EngineThread) -> None:
    connection = EngineConnection(engine.url)
    exported = InMemorySpanExporter()
    batcher = SpanBatcher(exported)
    for i in range(SPANS_PER_FRAME * 2 + 3):
        _tracer(batcher).start_span(f"s{i}", attributes={"i": i}).end()
    batcher.shutdown()
    spans = exported.get_finished_spans()
    try:
        assert EngineSpanExporter(connection).export(spans) == SpanExportResult.SUCCESS
        assert connection.frames_sent == 3
        store = engine.workers.observability.store
        wait_for(lambda: len(store.spans()) == len(spans))
        assert sorted(s["name"] for s in store.spans()) == sorted(s.name for s in spans)
    finally:
        connection.close()
