"""Exporters to the engine's ``/otel`` socket (protocol.md §1.11, builtins.md §12).

One WebSocket per process, ``<engine url path>/otel`` with the worker's handshake headers,
shared by the three exporters. Each frame is binary: a 4-byte ASCII prefix then OTLP/JSON
(lower-case hex ids) encoded by ``opentelemetry-exporter-otlp-json-common`` (spans by its faster
equivalent, :mod:`._otlp`):

- ``OTLP`` + ``ExportTraceServiceRequest`` (spans, at most :data:`SPANS_PER_FRAME` a frame: one
  span export can be several frames),
- ``LOGS`` + ``ExportLogsServiceRequest`` (log records),
- ``MTRC`` + ``ExportMetricsServiceRequest`` (metrics).

The socket is opened at ``init_otel`` by a short-lived background thread (the worker never waits
for it), else by the next export. When it cannot be opened, exports fail (the batch is dropped)
and the next attempt waits per :class:`ReconnectionConfig` (1 s doubling to 30 s, ±30 %
jitter), with one warning per failure.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from opentelemetry.exporter.otlp.json.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.json.common.metrics_encoder import encode_metrics
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from websockets.sync.client import ClientConnection, connect

from ..options import ReconnectionConfig
from ._handler_span import HandlerSpan, HandlerSpans
from ._otlp import encode_spans_json, handler_span_text

__all__ = [
    "PREFIX_LOGS",
    "PREFIX_METRICS",
    "PREFIX_SPANS",
    "EngineConnection",
    "EngineLogExporter",
    "EngineMetricsExporter",
    "EngineSpanExporter",
    "otel_url",
]

logger = logging.getLogger("iii.telemetry")

PREFIX_SPANS = b"OTLP"
PREFIX_LOGS = b"LOGS"
PREFIX_METRICS = b"MTRC"
#: websockets >= 17.1 wants ``legacy=True`` for a connection that is not a context manager.
_CONNECT_OPTIONS: dict[str, Any] = (
    {"legacy": True} if "legacy" in inspect.signature(connect).parameters else {}
)


def otel_url(engine_url: str) -> str:
    """``ws://h:p/base?q`` → ``ws://h:p/base/otel?q`` (the query string is kept)."""
    parts = urlsplit(engine_url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/otel"))


class EngineConnection:
    """The telemetry socket: ``send(prefix, payload)`` from any thread, connecting on demand."""

    def __init__(
        self,
        engine_url: str,
        headers: dict[str, str] | None = None,
        reconnection: ReconnectionConfig | None = None,
    ) -> None:
        self.url = otel_url(engine_url)
        self.headers = dict(headers or {})
        self.reconnection = reconnection or ReconnectionConfig()
        self._lock = threading.Lock()
        self._ws: ClientConnection | None = None
        self._attempt = 0
        self._next_try = 0.0
        self._closed = False
        self.frames_sent = 0

    def open_in_background(self) -> None:
        """Try to connect now, on a daemon thread."""
        threading.Thread(target=self.ensure, name="iii-otel-connect", daemon=True).start()

    def ensure(self) -> bool:
        """Connect unless connected (or backing off); ``True`` when the socket is up."""
        with self._lock:
            return not self._closed and (self._ws is not None or self._connect() is not None)

    def send(self, prefix: bytes, payload: bytes) -> bool:
        """Send one frame; ``False`` when the socket is down (the frame is dropped)."""
        with self._lock:
            if self._closed:
                return False
            ws = self._ws or self._connect()
            if ws is None:
                return False
            try:
                ws.send(prefix + payload)
            except Exception as exc:
                logger.warning("iii: telemetry socket %s failed: %s", self.url, exc)
                self._drop()
                return False
            self.frames_sent += 1
            return True

    def _connect(self) -> ClientConnection | None:
        now = time.monotonic()
        if now < self._next_try:
            return None
        try:
            ws: ClientConnection = connect(
                self.url,
                additional_headers=self.headers,
                open_timeout=5,
                compression=None,
                max_size=None,
                **_CONNECT_OPTIONS,
            )
        except Exception as exc:
            delay = self.reconnection.delay_s(self._attempt)
            self._attempt += 1
            self._next_try = now + delay
            logger.warning(
                "iii: cannot open the telemetry socket %s (%s); retrying in %.1fs",
                self.url,
                exc,
                delay,
            )
            return None
        self._attempt = 0
        self._ws = ws
        return ws

    def _drop(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            try:
                ws.close()
            except Exception as exc:  # already gone
                logger.debug("closing the telemetry socket: %s", exc)

    def close(self) -> None:
        """Close the socket; later sends are dropped."""
        with self._lock:
            self._closed = True
            self._drop()


#: Spans per ``OTLP`` frame, and the pause between two frames of one export (s). Encoding runs
#: on the exporter thread but holds the GIL; short chunks with a real sleep between them hand
#: the GIL back to the event loop thread within a fraction of a millisecond, instead of making it
#: wait out the interpreter's 5 ms switch interval after each of its socket calls.
SPANS_PER_FRAME = 64
FRAME_PAUSE_S = 0.0002


class EngineSpanExporter(SpanExporter):
    """Spans → ``OTLP`` frames, at most :data:`SPANS_PER_FRAME` spans each (SDK spans and
    handler spans alike).

    With ``handler_spans`` (the process's :class:`HandlerSpans`), :meth:`render` writes a handler
    span's JSON text when it ends, and the batcher queues that text instead of the span: a
    queued ``str`` is invisible to the cyclic garbage collector, while queued span objects (a
    few hundred at any time under load) are promoted to the oldest generation and make its full
    collections both more frequent and tens of milliseconds long.
    """

    reads_handler_spans = True

    def __init__(
        self, connection: EngineConnection, handler_spans: HandlerSpans | None = None
    ) -> None:
        self.connection = connection
        self.handler_spans = handler_spans
        self._rendered = (
            (handler_spans.resource, handler_spans.scope) if handler_spans is not None else None
        )

    def render(self, span: HandlerSpan) -> str | None:
        """The span's JSON text (``None`` when it is not one of ``handler_spans``' or not of
        the usual shape: it is then queued, and encoded, as it is)."""
        if span._spans is not self.handler_spans or self.handler_spans is None:
            return None
        return handler_span_text(span)

    def export(self, spans: Sequence[ReadableSpan | HandlerSpan | str]) -> SpanExportResult:
        for start in range(0, len(spans), SPANS_PER_FRAME):
            if start:
                time.sleep(FRAME_PAUSE_S)
            chunk = spans[start : start + SPANS_PER_FRAME]
            if not self.connection.send(PREFIX_SPANS, encode_spans_json(chunk, self._rendered)):
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class EngineLogExporter(LogRecordExporter):
    """Log records → ``LOGS`` frames."""

    def __init__(self, connection: EngineConnection) -> None:
        self.connection = connection

    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        payload = encode_logs(batch).to_json().encode()
        if self.connection.send(PREFIX_LOGS, payload):
            return LogRecordExportResult.SUCCESS
        return LogRecordExportResult.FAILURE

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class EngineMetricsExporter(MetricExporter):
    """Metrics → ``MTRC`` frames (cumulative temporality, the SDK default)."""

    def __init__(self, connection: EngineConnection) -> None:
        super().__init__()
        self.connection = connection

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        payload = encode_metrics(metrics_data).to_json().encode()
        if self.connection.send(PREFIX_METRICS, payload):
            return MetricExportResult.SUCCESS
        return MetricExportResult.FAILURE

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        return None
