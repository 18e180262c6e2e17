"""0.25 path of :class:`OtelConfig`."""

from iii.observability import OtelConfig

__all__ = ["OtelConfig"]
