"""0.25 path of :class:`Logger` (log records correlated with the active trace)."""

from iii.observability import Logger

__all__ = ["Logger"]
