"""Engine ids and the handler type, under the official 0.25 path ``iii.engine``
(sdk_surface.md §2)."""

from .iii_constants import EngineFunctions, EngineTriggers
from .remote import RemoteFunctionHandler

__all__ = ["EngineFunctions", "EngineTriggers", "RemoteFunctionHandler"]
