"""``init_otel`` / ``flush_otel`` / ``shutdown_otel`` (seed 003; sdk_surface.md §3.9).

``init_otel`` builds a tracer, logger and meter provider for this process (resource
``service.name`` etc. from :class:`OtelConfig`), exporting to the engine's ``/otel`` socket
and to any extra exporters in the config, and makes them the global OpenTelemetry providers
when none was set yet (so instrumentations such as ``opentelemetry-instrumentation-fastapi``
report into the same pipeline).
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from opentelemetry import _logs, metrics, trace
from opentelemetry._logs._internal import ProxyLoggerProvider
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.metrics._internal import _ProxyMeterProvider
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from ..options import ReconnectionConfig
from ._batch import SpanBatcher
from ._config import OtelConfig
from ._exporters import (
    EngineConnection,
    EngineLogExporter,
    EngineMetricsExporter,
    EngineSpanExporter,
    otel_url,
)
from ._handler_span import HandlerSpans, IIITracerProvider
from ._http import instrument_urllib
from ._payload import resolve_max_bytes_from_env
from ._spans import BaggageSpanProcessor
from ._state import state

__all__ = [
    "attach_event_loop",
    "flush_otel",
    "get_logger",
    "init_otel",
    "shutdown_otel",
    "shutdown_otel_async",
]

logger = logging.getLogger("iii.telemetry")

INSTRUMENTATION_NAME = "iii"


def _resource(config: OtelConfig) -> Resource:
    attributes: dict[str, Any] = {
        "service.name": config.service_name,
        "service.version": config.service_version,
        "service.instance.id": config.service_instance_id,
    }
    if config.service_namespace:
        attributes["service.namespace"] = config.service_namespace
    return Resource.create(attributes)


def _set_global(setter: Any, getter: Any, provider: Any, proxy_type: type) -> None:
    """Install ``provider`` globally unless the application already installed its own."""
    if isinstance(getter(), proxy_type):
        setter(provider)


def _observe(stats: dict[tuple[str, str], list[Any]], index: int) -> Any:
    def callback(options: CallbackOptions) -> list[Observation]:
        return [
            Observation(entry[index], {"iii.function.id": fn, "iii.invocation.status": status})
            for (fn, status), entry in list(stats.items())
        ]

    return callback


def init_otel(
    config: OtelConfig | dict[str, Any] | None = None,
    loop: asyncio.AbstractEventLoop | None = None,
) -> None:
    """Initialise OpenTelemetry for this process. Subsequent calls are no-ops until
    :func:`shutdown_otel`.

    ``config``: an :class:`OtelConfig` (or a dict of its fields); ``None`` reads everything from
    the environment. When it resolves to disabled (``OTEL_ENABLED=false``), nothing is set up
    and no socket is opened. ``loop`` is accepted for compatibility with the official SDK and
    not needed: the exporters run on their own threads.
    """
    del loop
    if state.initialized:
        return
    cfg = OtelConfig.coerce(config).resolved()
    if not cfg.enabled:
        return
    assert cfg.engine_ws_url is not None and cfg.spans_flush_interval_ms is not None
    resource = _resource(cfg)
    connection = (
        EngineConnection(cfg.engine_ws_url, cfg.engine_ws_headers, ReconnectionConfig())
        if cfg.engine_export
        else None
    )

    tracer_provider = IIITracerProvider(resource=resource)
    tracer = tracer_provider.get_tracer(INSTRUMENTATION_NAME)
    handler_spans = HandlerSpans(
        tracer_provider, tracer, INSTRUMENTATION_NAME, own=(BaggageSpanProcessor, SpanBatcher)
    )
    tracer_provider.add_span_processor(BaggageSpanProcessor())
    span_exporters: list[Any] = (
        [EngineSpanExporter(connection, handler_spans)] if connection else []
    )
    for exporter in [*span_exporters, *cfg.span_exporters]:
        tracer_provider.add_span_processor(
            SpanBatcher(exporter, schedule_delay_millis=cfg.spans_flush_interval_ms)
        )

    logger_provider = None
    if cfg.logs_enabled:
        logger_provider = LoggerProvider(resource=resource)
        log_exporters: list[Any] = [EngineLogExporter(connection)] if connection else []
        for log_exporter in [*log_exporters, *cfg.log_exporters]:
            logger_provider.add_log_record_processor(
                BatchLogRecordProcessor(
                    log_exporter,
                    schedule_delay_millis=cfg.logs_flush_interval_ms,
                    max_export_batch_size=cfg.logs_batch_size,
                )
            )

    meter_provider = None
    if cfg.metrics_enabled:
        metric_exporters: list[Any] = [EngineMetricsExporter(connection)] if connection else []
        readers = [
            PeriodicExportingMetricReader(e, export_interval_millis=cfg.metrics_export_interval_ms)
            for e in [*metric_exporters, *cfg.metric_exporters]
        ]
        meter_provider = MeterProvider(resource=resource, metric_readers=readers)

    state.config = cfg
    state.payloads = os.environ.get("III_DISABLE_TRACE_PAYLOADS", "").strip().lower() not in (
        "1",
        "true",
    )
    state.max_bytes = resolve_max_bytes_from_env()
    state.connection = connection
    state.tracer_provider = tracer_provider
    state.tracer = tracer
    state.handler_spans = handler_spans
    _set_global(
        trace.set_tracer_provider,
        trace.get_tracer_provider,
        tracer_provider,
        trace.ProxyTracerProvider,
    )
    if logger_provider is not None:
        state.logger_provider = logger_provider
        state.otel_logger = logger_provider.get_logger(INSTRUMENTATION_NAME)
        _set_global(
            _logs.set_logger_provider,
            _logs.get_logger_provider,
            logger_provider,
            ProxyLoggerProvider,
        )
    if meter_provider is not None:
        state.meter_provider = meter_provider
        meter = meter_provider.get_meter(INSTRUMENTATION_NAME)
        stats: dict[tuple[str, str], list[Any]] = {}
        meter.create_observable_counter(
            "iii.invocations",
            callbacks=[_observe(stats, 0)],
            unit="{invocation}",
            description="Handler invocations",
        )
        meter.create_observable_counter(
            "iii.invocation.time",
            callbacks=[_observe(stats, 1)],
            unit="ms",
            description="Total handler run time",
        )
        state.stats = stats
        _set_global(
            metrics.set_meter_provider,
            metrics.get_meter_provider,
            meter_provider,
            _ProxyMeterProvider,
        )
    if connection is not None:
        connection.open_in_background()
    if cfg.fetch_instrumentation_enabled:
        own = otel_url(cfg.engine_ws_url)
        state.uninstrument.append(instrument_urllib(lambda url: url.startswith(own)))


def flush_otel(timeout_millis: int = 30_000) -> bool:
    """Export everything pending (spans, log records, metrics) now, keeping OTel running.
    Returns ``False`` when a provider did not finish within ``timeout_millis``; ``True``
    (nothing to do) when OTel is not initialised."""
    ok = True
    for provider in (state.tracer_provider, state.logger_provider, state.meter_provider):
        if provider is not None:
            ok = bool(provider.force_flush(timeout_millis)) and ok
    return ok


def shutdown_otel() -> None:
    """Flush and shut down the providers, close the ``/otel`` socket, undo the urllib
    instrumentation; a later :func:`init_otel` starts afresh. Best-effort and synchronous."""
    if not state.initialized:
        return
    for undo in state.uninstrument:
        undo()
    for provider in (state.tracer_provider, state.logger_provider, state.meter_provider):
        if provider is not None:
            try:
                provider.shutdown()
            except Exception:
                logger.exception("OpenTelemetry provider shutdown failed")
    if state.connection is not None:
        state.connection.close()
    state.reset()


async def shutdown_otel_async() -> None:
    """:func:`shutdown_otel` without blocking the running loop (it runs on a worker thread)."""
    await asyncio.to_thread(shutdown_otel)


def attach_event_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Accepted for 0.25 code: there the ``/otel`` socket waits for a loop. Here the exporters
    run on their own threads from :func:`init_otel` on, so there is nothing to attach."""
    del loop


def get_logger() -> Any:
    """The OpenTelemetry logger the SDK emits :class:`Logger` records with, or ``None`` when
    OTel is not initialised (or logs are disabled)."""
    return state.otel_logger
