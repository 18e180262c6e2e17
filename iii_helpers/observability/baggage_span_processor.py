"""0.25 path of :class:`BaggageSpanProcessor` (copies baggage entries onto spans)."""

from iii.observability import BaggageSpanProcessor

__all__ = ["BaggageSpanProcessor"]
