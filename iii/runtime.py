"""Runtime handles under the official 0.25 path ``iii.runtime`` (sdk_surface.md §1a, §1b)."""

from iii import FunctionRef, TriggerTypeRef

from .options import IIIConnectionState

__all__ = ["FunctionRef", "IIIConnectionState", "TriggerTypeRef"]
