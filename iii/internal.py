"""The HTTP trigger payload type under the official 0.25 path ``iii.internal``."""

from .http import InternalHttpRequest

__all__ = ["InternalHttpRequest"]
