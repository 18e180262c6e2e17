"""OpenTelemetry fixtures: an initialised SDK pipeline with in-memory exporters, reset after
each test (the OTel API's global providers are set-once per process, so they are reset too)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import opentelemetry._logs._internal as logs_internal
import opentelemetry.metrics._internal as metrics_internal
import pytest
from opentelemetry import trace
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once

from iii.observability import OtelConfig, flush_otel, init_otel, shutdown_otel


def reset_otel_globals() -> None:
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None
    logs_internal._LOGGER_PROVIDER_SET_ONCE = Once()
    logs_internal._LOGGER_PROVIDER = None
    metrics_internal._METER_PROVIDER_SET_ONCE = Once()
    metrics_internal._METER_PROVIDER = None


@dataclass
class Otel:
    """The in-memory view of what the SDK exported."""

    span_exporter: InMemorySpanExporter
    log_exporter: InMemoryLogRecordExporter

    def spans(self) -> list[ReadableSpan]:
        flush_otel()
        return list(self.span_exporter.get_finished_spans())

    def span(self, name: str) -> ReadableSpan:
        found = [s for s in self.spans() if s.name == name]
        assert len(found) == 1, [s.name for s in self.spans()]
        return found[0]

    def logs(self) -> list[Any]:
        flush_otel()
        return list(self.log_exporter.get_finished_logs())


@pytest.fixture
def otel_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """OTel enabled by the environment (the suite default is off); reset afterwards."""
    monkeypatch.setenv("OTEL_ENABLED", "true")
    shutdown_otel()
    reset_otel_globals()
    yield
    shutdown_otel()
    reset_otel_globals()


@pytest.fixture
def otel_factory(otel_env: None) -> Callable[..., Otel]:
    """``otel_factory(**OtelConfig fields) -> Otel``: ``init_otel`` with in-memory span and log
    exporters added (engine export off unless ``engine_ws_url`` is given)."""

    def make(**fields: Any) -> Otel:
        spans, logs = InMemorySpanExporter(), InMemoryLogRecordExporter()
        fields.setdefault("engine_export", "engine_ws_url" in fields)
        fields.setdefault("fetch_instrumentation_enabled", False)
        init_otel(
            OtelConfig(
                span_exporters=[spans, *fields.pop("span_exporters", [])],
                log_exporters=[logs],
                **fields,
            )
        )
        return Otel(spans, logs)

    return make


@pytest.fixture
def otel(otel_factory: Callable[..., Otel]) -> Otel:
    """OTel initialised with in-memory exporters only (no engine socket)."""
    return otel_factory()
