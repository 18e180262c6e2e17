"""The span a handler runs in (``execute <function_id>``), recorded without the SDK's per-span
machinery.

An invocation's span is the SDK's one high-volume span: one per call, started and ended on the
event loop. The OpenTelemetry SDK's ``Span`` spends most of a fast handler's budget on
generality the handler span does not use (a lock per span, attribute validation of values the
SDK itself chose, a processor fan-out). :class:`HandlerSpan` is an OpenTelemetry API span
(``opentelemetry.trace.Span``) that records the same data and is exported through the same
batchers:

- it is the current span while the handler runs, so ``trace.get_current_span()``, the seed's
  span helpers and child spans (``with_span``, instrumentations) see it as usual;
- ids, trace flags and trace state follow the SDK's ``Tracer.start_span`` under the default
  sampler (``parentbased_always_on``): a new trace under no parent, the parent's trace id, flags
  and trace state under a sampled remote parent;
- what user code sets goes through the SDK's own ``BoundedAttributes`` (cleaning, limits,
  eviction); events beyond the span's event limit drop the oldest, as the SDK's do;
- status follows the OpenTelemetry specification (``OK`` is final, ``UNSET`` is ignored), and
  ``record_exception`` writes the semantic-convention ``exception`` event;
- our exporters read it directly; any other exporter gets an SDK ``ReadableSpan``
  (:meth:`HandlerSpan.to_readable`), converted on the exporter thread.

:func:`HandlerSpans.start` returns ``None`` where this would differ from the SDK (another
sampler, an ID generator that is not random, attribute-length limits, a span processor that is
not ours, an unsampled parent): the caller then uses the SDK tracer. Like any span, one handler
span is meant to be written by one thread at a time.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping, Sequence
from time import time_ns
from typing import Any

from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk.trace import (
    Event,
    ReadableSpan,
    SpanLimits,
    SpanProcessor,
    Tracer,
    TracerProvider,
    sampling,
)
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.util import types

__all__ = ["HandlerSpan", "HandlerSpans", "IIITracerProvider", "ServerSpan"]

logger = logging.getLogger("iii.telemetry")

_UNSET = Status(StatusCode.UNSET)
#: Attribute value types BoundedAttributes keeps as they are (no length limit set).
_PLAIN = frozenset({str, int, float, bool})
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_SAMPLED_RANDOM = TraceFlags(TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID)


class IIITracerProvider(TracerProvider):
    """A ``TracerProvider`` that keeps the list of its span processors (``processors``) and its
    ``span_limits``, so handler spans know whether every processor is one the SDK installed
    itself and which limits apply."""

    def __init__(self, *, span_limits: SpanLimits | None = None, **kwargs: Any) -> None:
        self.span_limits = span_limits or SpanLimits()
        super().__init__(span_limits=self.span_limits, **kwargs)
        self.processors: list[SpanProcessor] = []

    def add_span_processor(self, span_processor: SpanProcessor) -> None:
        super().add_span_processor(span_processor)
        self.processors.append(span_processor)


class HandlerSpans:
    """Starts :class:`HandlerSpan` s as ``tracer`` (``provider``'s, for instrumentation
    ``name``) would.

    ``starters``: the processors whose ``on_start`` runs (the baggage copier); ``enders``: those
    whose ``on_end`` runs (the batchers); ``own``: the processor types a handler span may skip
    the SDK for. Each is checked against ``provider.processors`` at every start.
    """

    def __init__(
        self,
        provider: IIITracerProvider,
        tracer: Any,
        name: str,
        own: tuple[type[SpanProcessor], ...],
    ) -> None:
        self.provider = provider
        self.own = own
        self.resource = provider.resource
        # the tracer's own scope (the SDK normalises its fields), else the same by hand
        self.scope: InstrumentationScope = getattr(
            tracer, "_instrumentation_scope", None
        ) or InstrumentationScope(name, "", "")
        #: ``OTEL_SDK_DISABLED=true`` gives a no-op tracer: no spans at all, ours included.
        self.enabled = isinstance(tracer, Tracer)
        self.id_generator = provider.id_generator
        self.limits = provider.span_limits
        self._seen = -1
        self._usable = False
        self.starters: list[SpanProcessor] = []
        self.enders: list[SpanProcessor] = []

    def _check(self) -> bool:
        """Whether handler spans match the SDK for this provider now (cached per processor
        count: processors can only be added)."""
        processors = self.provider.processors
        if len(processors) != self._seen:
            self._seen = len(processors)
            limits = self.limits
            self._usable = (
                all(type(p) in self.own for p in processors)
                and self.provider.sampler is sampling.DEFAULT_ON
                and self.id_generator.is_trace_id_random()
                and limits.max_attribute_length is None
                and limits.max_span_attribute_length is None
                and (limits.max_span_attributes or 0) >= 2
                and (limits.max_event_attributes or 0) >= 1
                and (limits.max_events or 0) >= 2
                and self.enabled
            )
            base = SpanProcessor
            self.starters = [p for p in processors if type(p).on_start is not base.on_start]
            self.enders = [p for p in processors if type(p).on_end is not base.on_end]
        return self._usable

    def start(
        self,
        name: str,
        parent: SpanContext | None,
        context: Context,
        attributes: dict[str, Any],
        baggage: bool,
        span_class: type[HandlerSpan] | None = None,
    ) -> HandlerSpan | None:
        """A started span ``name`` (kind INTERNAL, or ``span_class``'s) under the remote
        ``parent`` (``None``: a new trace), or ``None`` when the SDK tracer must make it.
        ``context`` is the parent context the start processors read (``baggage``: whether it
        holds any); ``attributes`` (str → str, int or float) become the span's own."""
        if not self._check():
            return None
        ids = self.id_generator
        if parent is None:
            context_ = SpanContext(
                ids.generate_trace_id(), ids.generate_span_id(), False, _SAMPLED_RANDOM
            )
        else:
            flags = parent.trace_flags
            if not flags.sampled:
                return None
            context_ = SpanContext(
                parent.trace_id,
                ids.generate_span_id(),
                False,
                _SAMPLED_RANDOM if flags.random_trace_id else _SAMPLED,
                parent.trace_state,
            )
        span = (span_class or HandlerSpan)(name, context_, parent, attributes, self)
        if baggage:
            for processor in self.starters:
                processor.on_start(span, context)  # type: ignore[arg-type]
        return span


class HandlerSpan(trace.Span):
    """A recording INTERNAL span with the read side of an SDK ``ReadableSpan`` (``name``,
    ``context``, ``parent``, ``attributes``, ``events``, ``status``, times in ns since the
    epoch, ``resource``, ``instrumentation_scope``, the ``dropped_*`` counts)."""

    __slots__ = (
        "_attributes",
        "_dropped_events",
        "_events",
        "_links",
        "_spans",
        "context",
        "end_time",
        "name",
        "parent",
        "start_time",
        "status",
    )

    kind = SpanKind.INTERNAL

    def __init__(
        self,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        attributes: dict[str, Any],
        spans: HandlerSpans,
    ) -> None:
        self.name = name
        self.context = context
        self.parent = parent
        # a plain dict until user code writes to it, then the SDK's BoundedAttributes
        self._attributes: dict[str, Any] | BoundedAttributes = attributes
        self._events: list[Event] = []
        self._dropped_events = 0
        self._links: BoundedList[Link] | None = None
        self._spans = spans
        self.status = _UNSET
        self.start_time = time_ns()
        self.end_time: int | None = None

    # -- ReadableSpan's read side ---------------------------------------------------------------

    @property
    def resource(self) -> Any:
        return self._spans.resource

    @property
    def instrumentation_scope(self) -> Any:
        return self._spans.scope

    @property
    def attributes(self) -> Mapping[str, Any]:
        return self._attributes

    @property
    def events(self) -> Sequence[Event]:
        return tuple(self._events)

    @property
    def links(self) -> Sequence[Link]:
        return tuple(self._links or ())

    @property
    def dropped_attributes(self) -> int:
        attributes = self._attributes
        return attributes.dropped if isinstance(attributes, BoundedAttributes) else 0

    @property
    def dropped_events(self) -> int:
        return self._dropped_events

    @property
    def dropped_links(self) -> int:
        links = self._links
        return links.dropped if isinstance(links, BoundedList) else 0

    def to_readable(self) -> ReadableSpan:
        """The same span as an SDK ``ReadableSpan`` (for exporters other than ours)."""
        events = BoundedList.from_seq(self._spans.limits.max_events, self._events)
        events.dropped = self._dropped_events
        return ReadableSpan(
            name=self.name,
            context=self.context,
            parent=self.parent,
            resource=self.resource,
            attributes=self._attributes,
            events=events,
            links=self._links or (),
            kind=self.kind,
            status=self.status,
            start_time=self.start_time,
            end_time=self.end_time,
            instrumentation_scope=self.instrumentation_scope,
        )

    # -- opentelemetry.trace.Span ---------------------------------------------------------------

    def get_span_context(self) -> SpanContext:
        return self.context

    def is_recording(self) -> bool:
        return self.end_time is None

    def _writable(self, what: str) -> bool:
        if self.end_time is None:
            return True
        logger.warning("%s on ended span.", what)
        return False

    def set_attributes(self, attributes: Mapping[str, types.AttributeValue]) -> None:
        if not self._writable("Setting attribute"):
            return
        bounded = self._bounded()
        for key, value in attributes.items():
            bounded[key] = value

    def set_attribute(self, key: str, value: types.AttributeValue) -> None:
        if not self._writable("Setting attribute"):
            return
        attributes = self._attributes
        if type(attributes) is dict and type(key) is str and key and type(value) in _PLAIN:
            # What BoundedAttributes does with a str, int, float or bool under no length
            # limit (keeps it as it is): an update moves the key last, a new key fits until the
            # limit (beyond it, the SDK's eviction).
            if key in attributes:
                del attributes[key]
                attributes[key] = value
                return
            if len(attributes) < self._spans.limits.max_span_attributes:  # type: ignore[operator]
                attributes[key] = value
                return
        self._bounded()[key] = value

    def _bounded(self) -> BoundedAttributes:
        attributes = self._attributes
        if not isinstance(attributes, BoundedAttributes):
            limits = self._spans.limits
            attributes = self._attributes = BoundedAttributes(
                limits.max_span_attributes, attributes, immutable=False
            )
        return attributes

    def add_event(
        self,
        name: str,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
    ) -> None:
        limits = self._spans.limits
        self._append_event(
            Event(
                name,
                BoundedAttributes(limits.max_event_attributes, attributes, immutable=True),
                timestamp,
            )
        )

    def add_payload_event(self, name: str, payload: str) -> None:
        """Add event ``name`` with the one attribute ``iii.payload`` (a str the SDK chose)."""
        self._append_event(Event(name, {"iii.payload": payload}))

    def _append_event(self, event: Event) -> None:
        if not self._writable("Calling add_event"):
            return
        events = self._events
        if len(events) >= self._spans.limits.max_events:  # type: ignore[operator]
            del events[0]
            self._dropped_events += 1
        events.append(event)

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        if context is None or (not context.is_valid and not attributes):
            return  # the SDK ignores a link to an invalid span that carries no attributes
        if not self._writable("Calling add_link"):
            return
        limits = self._spans.limits
        links = self._links
        if links is None:
            links = self._links = BoundedList(limits.max_links)
        links.append(
            Link(
                context,
                BoundedAttributes(limits.max_link_attributes, attributes, immutable=True),
            )
        )

    def update_name(self, name: str) -> None:
        if self._writable("Calling update_name"):
            self.name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        # OpenTelemetry specification, Set Status: OK is final, UNSET is ignored.
        if self.end_time is not None or self.status.status_code is StatusCode.OK:
            return
        if isinstance(status, Status):
            if status.status_code is not StatusCode.UNSET:
                self.status = status
        elif status is not StatusCode.UNSET:
            self.status = Status(status, description)

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        """The semantic-convention ``exception`` event: ``exception.type`` (qualified name
        unless a builtin), ``exception.message``, ``exception.stacktrace``,
        ``exception.escaped``."""
        kind = type(exception)
        module = kind.__module__
        event: dict[str, Any] = {
            "exception.type": kind.__qualname__
            if not module or module == "builtins"
            else f"{module}.{kind.__qualname__}",
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
        }
        if attributes:
            event.update(attributes)
        self.add_event("exception", event, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self.end_time is not None:
            logger.warning("Calling end() on an ended span.")
            return
        self.end_time = end_time if end_time is not None else time_ns()
        for processor in self._spans.enders:
            processor.on_end(self)  # type: ignore[arg-type]


class ServerSpan(HandlerSpan):
    """A :class:`HandlerSpan` of kind SERVER (the embedded engine's span of an HTTP request)."""

    __slots__ = ()

    kind = SpanKind.SERVER
