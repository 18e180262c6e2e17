"""The SDK's batch span processor: spans queue in memory, one exporter thread sends them.

Same contract as OpenTelemetry's ``BatchSpanProcessor`` (sampled spans only, ``force_flush``,
``shutdown``), tuned for a worker that ends a span per invocation:

- ``on_end`` (the handler's task, on the event loop) only appends to a bounded deque; all
  encoding and sending happens on the exporter thread, ``max_export_batch_size`` spans per
  export, yielding the GIL between exports so the event loop is not held for a whole backlog.
- When the queue is full (the exporter cannot keep up) new spans are dropped and counted
  (:attr:`SpanBatcher.dropped`), with at most one warning per ``warn_interval_s`` that gives the
  number dropped since the previous one: OpenTelemetry's processor logs one warning per dropped
  span, which under sustained load costs the application more than the spans themselves.

Sizes default to the standard ``OTEL_BSP_MAX_QUEUE_SIZE`` (8192 here) and
``OTEL_BSP_MAX_EXPORT_BATCH_SIZE`` (256 here) environment variables.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable

from opentelemetry.context import Context, attach, detach, set_value
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter

from ._handler_span import HandlerSpan

__all__ = ["DEFAULT_MAX_EXPORT_BATCH_SIZE", "DEFAULT_MAX_QUEUE_SIZE", "SpanBatcher"]

logger = logging.getLogger("iii.telemetry")

DEFAULT_MAX_QUEUE_SIZE = 8192
DEFAULT_MAX_EXPORT_BATCH_SIZE = 256
#: The key OpenTelemetry instrumentations check to stay quiet inside an exporter.
_SUPPRESS = "suppress_instrumentation"


def _env_size(name: str, default: int) -> int:
    try:
        value = int(os.environ.get(name, "").strip())
    except ValueError:
        return default
    return value if value > 0 else default


class SpanBatcher(SpanProcessor):
    """Batches ended, sampled spans to ``exporter`` from a daemon thread.

    ``schedule_delay_millis``: the longest a span waits before export (ms). ``max_queue_size``:
    spans held at most (``None``: env ``OTEL_BSP_MAX_QUEUE_SIZE``, else 8192); beyond it spans
    are dropped and counted. ``max_export_batch_size``: spans per ``exporter.export`` call
    (``None``: env ``OTEL_BSP_MAX_EXPORT_BATCH_SIZE``, else 256, capped at the queue size); a
    full batch wakes the thread before the delay. ``warn_interval_s``: the least time between
    two drop warnings.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        schedule_delay_millis: float = 100,
        max_queue_size: int | None = None,
        max_export_batch_size: int | None = None,
        warn_interval_s: float = 10.0,
    ) -> None:
        self.exporter = exporter
        #: Our own exporters read :class:`HandlerSpan` s as they are; others get SDK spans.
        self._reads_handler_spans = bool(getattr(exporter, "reads_handler_spans", False))
        #: Our engine exporter writes a handler span as text when it ends (``render``); the
        #: queue then holds that text, not the span (see :class:`EngineSpanExporter`).
        self._render: Callable[[HandlerSpan], str | None] | None = getattr(exporter, "render", None)
        self.delay_s = max(0.001, schedule_delay_millis / 1000)
        self.max_queue_size = max_queue_size or _env_size(
            "OTEL_BSP_MAX_QUEUE_SIZE", DEFAULT_MAX_QUEUE_SIZE
        )
        self.max_export_batch_size = min(
            self.max_queue_size,
            max_export_batch_size
            or _env_size("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", DEFAULT_MAX_EXPORT_BATCH_SIZE),
        )
        self.warn_interval_s = warn_interval_s
        #: Spans dropped because the queue was full, since start.
        self.dropped = 0
        self._dropped_unreported = 0
        self._last_warning = float("-inf")
        self._queue: deque[ReadableSpan | HandlerSpan | str] = deque()
        self._shutdown = False
        self._start_thread()
        if hasattr(os, "register_at_fork"):  # a forked child needs its own thread
            ref = weakref.ref(self)

            def after_fork() -> None:
                batcher = ref()
                if batcher is not None:
                    batcher._after_fork()

            os.register_at_fork(after_in_child=after_fork)

    def _start_thread(self) -> None:
        self._wake = threading.Event()
        self._export_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="iii-otel-spans", daemon=True)
        self._thread.start()

    def _after_fork(self) -> None:
        self._queue.clear()
        if not self._shutdown:
            self._start_thread()

    # -- SpanProcessor --------------------------------------------------------------------------

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan | HandlerSpan) -> None:
        context = span.context
        if context is None or not context.trace_flags.sampled or self._shutdown:
            return
        queue = self._queue
        if len(queue) >= self.max_queue_size:
            self._drop()
            return
        item: ReadableSpan | HandlerSpan | str = span
        if self._render is not None and isinstance(span, HandlerSpan):
            item = self._render(span) or span  # the text, or the span when it has none
        queue.append(item)
        if len(queue) >= self.max_export_batch_size and not self._wake.is_set():
            self._wake.set()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export everything queued now, on the calling thread; ``False`` after shutdown."""
        if self._shutdown:
            return False
        self._export_all()
        return True

    def shutdown(self) -> None:
        """Export what is queued (waiting up to 30 s for the thread), then shut the exporter."""
        if self._shutdown:
            return
        self._shutdown = True
        self._wake.set()
        self._thread.join(30)
        self.exporter.shutdown()

    # -- the exporter thread --------------------------------------------------------------------

    def _run(self) -> None:
        while not self._shutdown:
            self._wake.wait(self.delay_s)
            self._wake.clear()
            self._export_all()
        self._export_all()

    def _export_all(self) -> None:
        queue = self._queue
        with self._export_lock:
            while queue:
                count = min(len(queue), self.max_export_batch_size)
                batch = [queue.popleft() for _ in range(count)]
                if not self._reads_handler_spans:
                    batch = [s.to_readable() if isinstance(s, HandlerSpan) else s for s in batch]
                token = attach(set_value(_SUPPRESS, True))
                try:
                    # handler spans only reach exporters that declare they read them
                    self.exporter.export(batch)  # type: ignore[arg-type]
                except Exception:
                    logger.exception("iii: span export failed; %d spans lost", count)
                finally:
                    detach(token)
                if queue:
                    time.sleep(0.0002)  # let the event loop thread take the GIL between batches

    def _drop(self) -> None:
        self.dropped += 1
        self._dropped_unreported += 1
        now = time.monotonic()
        if now - self._last_warning >= self.warn_interval_s:
            self._last_warning = now
            dropped, self._dropped_unreported = self._dropped_unreported, 0
            logger.warning(
                "iii: span export queue full (%d spans): dropped %d span(s) since the last "
                "warning, %d in all; the exporter cannot keep up",
                self.max_queue_size,
                dropped,
                self.dropped,
            )
