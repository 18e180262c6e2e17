"""``iii_helpers.stream`` (seed 003 ``stream``): inputs, results, update ops and trigger
configs of the engine's stream built-in (builtins.md §5–§6); the same objects as
:mod:`iii.stream`, which also has the ``IStream`` interface of custom streams.
"""

from iii.stream import *  # noqa: F403
from iii.stream import __all__ as _stream_all

__all__ = [name for name in _stream_all if name != "IStream"]
