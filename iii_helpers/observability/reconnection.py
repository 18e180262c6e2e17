"""0.25 path of :class:`ReconnectionConfig` (reconnect backoff, protocol.md §1.9)."""

from iii.options import ReconnectionConfig

__all__ = ["ReconnectionConfig"]
